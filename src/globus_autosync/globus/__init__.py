"""What both Globus sides share: credentials, the Transfer client and its pace, the paged
listing, one mapping of Globus errors, collections' documents, flows.
May import: errors, config; never sources, transports or anything above them."""

from __future__ import annotations
