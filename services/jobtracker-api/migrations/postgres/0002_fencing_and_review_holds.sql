-- Claims are fenced: every claim gets a new lease_id that the claimant's later writes present.
ALTER TABLE job_applications ADD COLUMN lease_id TEXT;
-- Who asked for a question's review: a user's hold keeps every bot off the question.
ALTER TABLE questions ADD COLUMN review_requested_by TEXT;
