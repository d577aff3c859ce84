"""The resolver `info` of this schema: its context is the request's RequestContext."""

from __future__ import annotations

import strawberry

from jobql.resolvers.context import RequestContext

Info = strawberry.Info[RequestContext, None]
