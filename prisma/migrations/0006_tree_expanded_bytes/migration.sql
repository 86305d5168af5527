-- The bytes the files under a tree come to, as its entries declare them: counted at a commit to a
-- workspace with a quota (what a restore of the version writes), and kept so that the next commit
-- reads only the trees it adds. Null for objects that are not trees, or not counted yet.
ALTER TABLE stored_objects ADD COLUMN expanded_bytes bigint;
