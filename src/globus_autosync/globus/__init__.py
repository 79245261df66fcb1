"""What both Globus sides share: credentials, the client and its errors, flows.
May import: errors, config; never sources, transports or anything above them."""

from __future__ import annotations
