"""Hop 1: WAT records -> IMG@/src links (members, records, links, url_join)."""
