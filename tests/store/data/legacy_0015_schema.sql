BEGIN TRANSACTION;
CREATE TABLE accounts (
	id INTEGER NOT NULL, 
	profile_key VARCHAR(512) NOT NULL, 
	subject VARCHAR(255) NOT NULL, 
	username VARCHAR(255), 
	server VARCHAR(512), 
	client_id VARCHAR(255) NOT NULL, 
	grant_type VARCHAR(64) NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	last_login_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_accounts_profile_subject UNIQUE (profile_key, subject)
);
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0015');
CREATE TABLE audit_events (
	id INTEGER NOT NULL, 
	account_id INTEGER, 
	event VARCHAR(64) NOT NULL, 
	detail TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(account_id) REFERENCES accounts (id) ON DELETE SET NULL
);
CREATE TABLE discovery_cache (
	url VARCHAR(2048) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	body TEXT, 
	fetched_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	refetched_at FLOAT, 
	PRIMARY KEY (url)
);
CREATE TABLE link_plateaus (
	host VARCHAR(255) NOT NULL, 
	parts_in_flight INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (host)
);
CREATE TABLE service_api_keys (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	tenant VARCHAR(255) NOT NULL, 
	key_hash VARCHAR(64) NOT NULL, 
	prefix VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, last_used_at DATETIME, webhook_secret BLOB, 
	PRIMARY KEY (id), 
	UNIQUE (key_hash)
);
CREATE TABLE service_connections (
	id INTEGER NOT NULL, 
	tenant VARCHAR(255) NOT NULL, 
	external_user_id VARCHAR(255) NOT NULL, 
	account_id INTEGER, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_service_connections_user UNIQUE (tenant, external_user_id), 
	FOREIGN KEY(account_id) REFERENCES accounts (id) ON DELETE SET NULL
);
CREATE TABLE service_idempotency_keys (
	id INTEGER NOT NULL, 
	tenant VARCHAR(255) NOT NULL, 
	"key" VARCHAR(255) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	upload_id VARCHAR(40) NOT NULL, 
	status_code INTEGER, 
	response_body TEXT, 
	created_at FLOAT NOT NULL, 
	claimed_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_service_idempotency_keys_key UNIQUE (tenant, "key")
);
CREATE TABLE service_jobs (
	id VARCHAR(40) NOT NULL, 
	tenant VARCHAR(255) NOT NULL, 
	external_user_id VARCHAR(255) NOT NULL, 
	file_path TEXT NOT NULL, 
	owns_file BOOLEAN NOT NULL, 
	folder VARCHAR(1024) NOT NULL, 
	folder_id VARCHAR(64), 
	title TEXT NOT NULL, 
	description TEXT, 
	callback_url TEXT, 
	state VARCHAR(32) NOT NULL, 
	bytes_total BIGINT NOT NULL, 
	bytes_sent BIGINT NOT NULL, 
	record_id INTEGER, 
	session_upload_id VARCHAR(64), 
	session_id VARCHAR(64), 
	viewer_url TEXT, 
	error TEXT, 
	attempts INTEGER NOT NULL, 
	cancel_requested BOOLEAN NOT NULL, 
	next_attempt_at FLOAT NOT NULL, 
	lease_owner VARCHAR(255), 
	lease_expires_at FLOAT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	finished_at DATETIME, api_key_id INTEGER, file_identity VARCHAR(128), 
	PRIMARY KEY (id)
);
CREATE TABLE service_pending_signins (
	state_hash VARCHAR(64) NOT NULL, 
	tenant VARCHAR(255) NOT NULL, 
	external_user_id VARCHAR(255) NOT NULL, 
	nonce BLOB NOT NULL, 
	code_verifier BLOB, 
	redirect_uri TEXT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	used_at FLOAT, start_hash VARCHAR(64), authorize_url BLOB, browser_hash VARCHAR(64), started_at FLOAT, expected_username VARCHAR(255), api_key_id INTEGER, display_name VARCHAR(200), 
	PRIMARY KEY (state_hash)
);
CREATE TABLE service_webhooks (
	id INTEGER NOT NULL, 
	job_id VARCHAR(40), 
	url TEXT NOT NULL, 
	body TEXT NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at FLOAT NOT NULL, 
	delivered_at FLOAT, 
	failed BOOLEAN NOT NULL, 
	last_error TEXT, 
	created_at DATETIME NOT NULL, api_key_id INTEGER, 
	PRIMARY KEY (id)
);
CREATE TABLE signature_hosts (
	host VARCHAR(255) NOT NULL, 
	signature VARCHAR(16) NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (host)
);
CREATE TABLE "tokens" (
	account_id INTEGER NOT NULL, 
	access_token BLOB NOT NULL, 
	refresh_token BLOB, 
	id_token BLOB, 
	token_type VARCHAR(32) NOT NULL, 
	scope TEXT, 
	expires_at FLOAT, 
	version INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	refresh_claimed_until FLOAT, 
	refresh_claimant VARCHAR(128), 
	refresh_outcome_unknown BOOLEAN DEFAULT 0 NOT NULL, 
	PRIMARY KEY (account_id), 
	FOREIGN KEY(account_id) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE TABLE upload_host_calls (
	host VARCHAR(255) NOT NULL, 
	call VARCHAR(32) NOT NULL, 
	answer VARCHAR(16) NOT NULL, 
	detail VARCHAR(255), 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (host, call)
);
CREATE TABLE upload_leases (
	upload_id INTEGER NOT NULL, 
	holder VARCHAR(64) NOT NULL, 
	pid INTEGER NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	expires_at FLOAT NOT NULL, 
	PRIMARY KEY (upload_id), 
	FOREIGN KEY(upload_id) REFERENCES uploads (id) ON DELETE CASCADE
);
CREATE TABLE upload_parts (
	upload_id INTEGER NOT NULL, 
	part_number INTEGER NOT NULL, 
	etag VARCHAR(128) NOT NULL, 
	size BIGINT NOT NULL, 
	PRIMARY KEY (upload_id, part_number), 
	FOREIGN KEY(upload_id) REFERENCES uploads (id) ON DELETE CASCADE
);
CREATE TABLE uploads (
	id INTEGER NOT NULL, 
	account_id INTEGER, 
	server VARCHAR(512), 
	folder_id VARCHAR(64) NOT NULL, 
	session_upload_id VARCHAR(64), 
	upload_target VARCHAR(1024), 
	s3_upload_id VARCHAR(1024), 
	object_key VARCHAR(1024) NOT NULL, 
	file_path TEXT NOT NULL, 
	file_size BIGINT NOT NULL, 
	file_mtime FLOAT NOT NULL, 
	fingerprint VARCHAR(128) NOT NULL, 
	part_size INTEGER NOT NULL, 
	title TEXT NOT NULL, 
	description TEXT, 
	state VARCHAR(32) NOT NULL, 
	session_id VARCHAR(64), 
	viewer_url TEXT, 
	message TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, step VARCHAR(32), cancel_requested BOOLEAN, 
	PRIMARY KEY (id), 
	FOREIGN KEY(account_id) REFERENCES accounts (id) ON DELETE SET NULL
);
CREATE INDEX ix_accounts_profile_key ON accounts (profile_key);
CREATE INDEX ix_audit_events_account_id ON audit_events (account_id);
CREATE INDEX ix_uploads_account_id ON uploads (account_id);
CREATE INDEX ix_uploads_session_upload_id ON uploads (session_upload_id);
CREATE INDEX ix_uploads_state ON uploads (state);
CREATE INDEX ix_service_api_keys_tenant ON service_api_keys (tenant);
CREATE INDEX ix_service_connections_account_id ON service_connections (account_id);
CREATE INDEX ix_service_pending_signins_expires_at ON service_pending_signins (expires_at);
CREATE INDEX ix_service_jobs_tenant ON service_jobs (tenant);
CREATE INDEX ix_service_jobs_external_user_id ON service_jobs (external_user_id);
CREATE INDEX ix_service_jobs_state ON service_jobs (state);
CREATE INDEX ix_service_webhooks_job_id ON service_webhooks (job_id);
CREATE INDEX ix_service_webhooks_next_attempt_at ON service_webhooks (next_attempt_at);
CREATE UNIQUE INDEX ix_service_pending_signins_start_hash ON service_pending_signins (start_hash);
CREATE INDEX ix_service_idempotency_keys_created_at ON service_idempotency_keys (created_at);
COMMIT;
