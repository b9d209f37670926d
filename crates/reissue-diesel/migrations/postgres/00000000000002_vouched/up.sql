-- When an operator vouched for the account (the admin CLI created it, or
-- `reissue-admin users vouch` marked it), Unix seconds; NULL: never. A
-- sign-up proves nothing about the email, so what an app grants by email
-- (the example apps' REISSUE_ADMIN_EMAILS) it grants to vouched accounts only.
ALTER TABLE users ADD COLUMN vouched_at BIGINT;
