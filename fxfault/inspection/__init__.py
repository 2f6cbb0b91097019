"""Reading what the pass did: site records and summaries, graph export, diffs."""

from .sites import SiteInfo, Summary, SummaryRow, rate_text, sites, summary

__all__ = ["SiteInfo", "Summary", "SummaryRow", "rate_text", "sites", "summary"]
