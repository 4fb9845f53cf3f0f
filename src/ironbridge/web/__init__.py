"""The console: server-rendered pages and static assets, served by the API process.

Pages are Jinja2 templates; their data comes from the public ``/api/v1`` (fetched by
the page with the session cookie) and live updates from the SSE feeds in
:mod:`ironbridge.web.live`.
"""

from ironbridge.web.live import fleet_summary, latest_of
from ironbridge.web.live import router as live_router
from ironbridge.web.pages import mount_console

__all__ = ["fleet_summary", "latest_of", "live_router", "mount_console"]
