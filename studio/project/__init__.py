"""What runs the site, apart from what it produces (series, scenes, takes: the rest of studio).

Django's "project" in its own sense: settings and the environment readers behind them,
the WSGI, ASGI and Celery entry points, the keys every process checks at start, the
template engine set up for the storyboard's cards, the Content-Security-Policy, rate-limit
windows in Redis, the embedded Redis and `make run`'s process supervisor.
"""
