-- The chunker parameters a version's files were split with (libs/image ChunkerParams). They travel
-- with the image so that a later change of defaults never breaks reading or deduplicating old ones.
ALTER TABLE versions ADD COLUMN chunker jsonb;
