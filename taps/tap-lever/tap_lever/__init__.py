"""Singer tap for Lever (ATS): opportunities, postings, offers, users."""
