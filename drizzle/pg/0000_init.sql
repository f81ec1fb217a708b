CREATE TABLE "alert_channels" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"type" text NOT NULL,
	"config" text NOT NULL,
	"secrets" text NOT NULL,
	"enabled" integer DEFAULT 1 NOT NULL,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "alert_rules" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"params" text NOT NULL,
	"channels" text NOT NULL,
	"dedup_seconds" integer NOT NULL,
	"quiet_seconds" integer NOT NULL,
	"enabled" integer DEFAULT 1 NOT NULL,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "api_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"role" text NOT NULL,
	"token_hash" text NOT NULL,
	"created_at" bigint NOT NULL,
	"last_used_at" bigint,
	"revoked_at" bigint,
	CONSTRAINT "api_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "attack_asn" (
	"asn" bigint PRIMARY KEY NOT NULL,
	"org" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "attack_ignored" (
	"bucket" bigint PRIMARY KEY NOT NULL,
	"count" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "attack_meta" (
	"key" text PRIMARY KEY NOT NULL,
	"value" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "attack_minute" (
	"bucket" bigint NOT NULL,
	"node" text NOT NULL,
	"pot_type" text NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "attack_minute_bucket_node_pot_type_pk" PRIMARY KEY("bucket","node","pot_type")
);
--> statement-breakpoint
CREATE TABLE "attack_rollup_day" (
	"dim" integer NOT NULL,
	"bucket" bigint NOT NULL,
	"node" text NOT NULL,
	"pot_type" text NOT NULL,
	"key" text NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "attack_rollup_day_dim_bucket_node_pot_type_key_pk" PRIMARY KEY("dim","bucket","node","pot_type","key")
);
--> statement-breakpoint
CREATE TABLE "attack_rollup_hour" (
	"dim" integer NOT NULL,
	"bucket" bigint NOT NULL,
	"node" text NOT NULL,
	"pot_type" text NOT NULL,
	"key" text NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "attack_rollup_hour_dim_bucket_node_pot_type_key_pk" PRIMARY KEY("dim","bucket","node","pot_type","key")
);
--> statement-breakpoint
CREATE TABLE "attack_session_steps" (
	"session_id" bigint NOT NULL,
	"event_id" bigint NOT NULL,
	"at" bigint NOT NULL,
	"kind" text NOT NULL,
	"value" text NOT NULL,
	"detail" text,
	CONSTRAINT "attack_session_steps_session_id_event_id_pk" PRIMARY KEY("session_id","event_id")
);
--> statement-breakpoint
CREATE TABLE "attack_sessions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node" text NOT NULL,
	"pot_id" text NOT NULL,
	"pot_type" text NOT NULL,
	"session" text NOT NULL,
	"src_ip" text,
	"src_port" integer,
	"dest_ip" text,
	"dest_port" integer,
	"protocol" text,
	"started_at" bigint NOT NULL,
	"last_seen" bigint NOT NULL,
	"closed" integer DEFAULT 0 NOT NULL,
	"events" bigint NOT NULL,
	"logins_failed" bigint DEFAULT 0 NOT NULL,
	"username" text,
	"password" text
);
--> statement-breakpoint
CREATE TABLE "attack_top_day" (
	"dim" integer NOT NULL,
	"bucket" bigint NOT NULL,
	"key" text NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "attack_top_day_dim_bucket_key_pk" PRIMARY KEY("dim","bucket","key")
);
--> statement-breakpoint
CREATE TABLE "attack_top_day_floor" (
	"dim" integer NOT NULL,
	"bucket" bigint NOT NULL,
	"floor" bigint NOT NULL,
	"n" integer NOT NULL,
	CONSTRAINT "attack_top_day_floor_dim_bucket_pk" PRIMARY KEY("dim","bucket")
);
--> statement-breakpoint
CREATE TABLE "attacker_facts" (
	"ip" text NOT NULL,
	"kind" integer NOT NULL,
	"value" text NOT NULL,
	"count" bigint NOT NULL,
	"first_seen" bigint NOT NULL,
	"last_seen" bigint NOT NULL,
	CONSTRAINT "attacker_facts_ip_kind_value_pk" PRIMARY KEY("ip","kind","value")
);
--> statement-breakpoint
CREATE TABLE "attackers" (
	"ip" text PRIMARY KEY NOT NULL,
	"first_seen" bigint NOT NULL,
	"last_seen" bigint NOT NULL,
	"events" bigint NOT NULL,
	"scope" text NOT NULL,
	"country" text,
	"asn" bigint,
	"as_org" text,
	"city" text,
	"latitude" double precision,
	"longitude" double precision,
	"scanner" text,
	"logins_failed" bigint DEFAULT 0 NOT NULL,
	"logins_ok" bigint DEFAULT 0 NOT NULL,
	"commands" bigint DEFAULT 0 NOT NULL,
	"downloads" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" bigint NOT NULL,
	"actor_id" text,
	"actor_name" text,
	"actor_role" text,
	"actor_kind" text,
	"source" text NOT NULL,
	"action" text NOT NULL,
	"method" text NOT NULL,
	"route" text NOT NULL,
	"target" text,
	"status" integer NOT NULL,
	"changes" text
);
--> statement-breakpoint
CREATE TABLE "authkeys" (
	"ident" text PRIMARY KEY NOT NULL,
	"owner" text DEFAULT '' NOT NULL,
	"secret" text NOT NULL,
	"pubchans" text DEFAULT '[]' NOT NULL,
	"subchans" text DEFAULT '[]' NOT NULL,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "commands" (
	"id" text PRIMARY KEY NOT NULL,
	"seq" bigint NOT NULL,
	"node_name" text NOT NULL,
	"kind" text NOT NULL,
	"pot_id" text,
	"command" text NOT NULL,
	"status" text NOT NULL,
	"result" text,
	"batch_id" text,
	"requested_by" text,
	"created_at" bigint NOT NULL,
	"sent_at" bigint,
	"finished_at" bigint,
	"expires_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "events" (
	"id" bigserial NOT NULL,
	"node_name" text NOT NULL,
	"pot_id" text NOT NULL,
	"pot_type" text NOT NULL,
	"event_type" text NOT NULL,
	"timestamp" bigint NOT NULL,
	"data" text NOT NULL,
	"received_at" bigint NOT NULL,
	CONSTRAINT "events_id_received_at_pk" PRIMARY KEY("id","received_at")
);
--> statement-breakpoint
CREATE TABLE "node_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_name" text NOT NULL,
	"kind" text NOT NULL,
	"message" text,
	"at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "nodes" (
	"name" text PRIMARY KEY NOT NULL,
	"node_id" text,
	"node_type" text,
	"address" text,
	"port" integer,
	"status" text DEFAULT 'Offline' NOT NULL,
	"enrollment" text NOT NULL,
	"totp_secret" text,
	"last_totp_step" bigint,
	"remote_address" text,
	"transport" text,
	"connected_at" bigint,
	"last_seen_at" bigint,
	"disconnected_at" bigint,
	"disconnect_reason" text,
	"pending_source" text,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pots" (
	"node_name" text NOT NULL,
	"pot_id" text NOT NULL,
	"pot_type" text DEFAULT '' NOT NULL,
	"status" text NOT NULL,
	"last_message" text,
	"updated_at" bigint NOT NULL,
	CONSTRAINT "pots_node_name_pot_id_pk" PRIMARY KEY("node_name","pot_id")
);
--> statement-breakpoint
CREATE TABLE "unknown_registrations" (
	"address_key" text PRIMARY KEY NOT NULL,
	"last_address" text NOT NULL,
	"attempts" bigint NOT NULL,
	"first_seen_at" bigint NOT NULL,
	"last_seen_at" bigint NOT NULL,
	"last_names" text DEFAULT '[]' NOT NULL,
	"last_result" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "user_sessions" (
	"id_hash" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"csrf_token" text NOT NULL,
	"created_at" bigint NOT NULL,
	"last_seen_at" bigint NOT NULL,
	"expires_at" bigint NOT NULL,
	"source" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" text PRIMARY KEY NOT NULL,
	"username" text NOT NULL,
	"role" text NOT NULL,
	"password_hash" text NOT NULL,
	"created_at" bigint NOT NULL,
	"disabled_at" bigint,
	"last_login_at" bigint
);
--> statement-breakpoint
ALTER TABLE "pots" ADD CONSTRAINT "pots_node_name_nodes_name_fk" FOREIGN KEY ("node_name") REFERENCES "public"."nodes"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_sessions" ADD CONSTRAINT "user_sessions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "alert_channels_name_idx" ON "alert_channels" USING btree ("name");--> statement-breakpoint
CREATE UNIQUE INDEX "alert_rules_name_idx" ON "alert_rules" USING btree ("name");--> statement-breakpoint
CREATE INDEX "attack_rollup_day_key_idx" ON "attack_rollup_day" USING btree ("dim","key","bucket");--> statement-breakpoint
CREATE INDEX "attack_rollup_hour_key_idx" ON "attack_rollup_hour" USING btree ("dim","key","bucket");--> statement-breakpoint
CREATE UNIQUE INDEX "attack_sessions_key_idx" ON "attack_sessions" USING btree ("node","pot_id","session");--> statement-breakpoint
CREATE INDEX "attack_sessions_started_idx" ON "attack_sessions" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX "attack_sessions_ip_idx" ON "attack_sessions" USING btree ("src_ip","started_at");--> statement-breakpoint
CREATE INDEX "attack_sessions_last_seen_idx" ON "attack_sessions" USING btree ("last_seen");--> statement-breakpoint
CREATE INDEX "attackers_last_seen_idx" ON "attackers" USING btree ("last_seen");--> statement-breakpoint
CREATE INDEX "audit_log_at_idx" ON "audit_log" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_log_actor_name_idx" ON "audit_log" USING btree ("actor_name","id");--> statement-breakpoint
CREATE INDEX "audit_log_actor_id_idx" ON "audit_log" USING btree ("actor_id","id");--> statement-breakpoint
CREATE INDEX "audit_log_action_idx" ON "audit_log" USING btree ("action","id");--> statement-breakpoint
CREATE INDEX "audit_log_target_idx" ON "audit_log" USING btree ("target","id");--> statement-breakpoint
CREATE INDEX "commands_node_seq_idx" ON "commands" USING btree ("node_name","seq");--> statement-breakpoint
CREATE INDEX "commands_node_status_seq_idx" ON "commands" USING btree ("node_name","status","seq");--> statement-breakpoint
CREATE INDEX "commands_status_idx" ON "commands" USING btree ("status");--> statement-breakpoint
CREATE INDEX "commands_batch_idx" ON "commands" USING btree ("batch_id");--> statement-breakpoint
CREATE INDEX "events_received_idx" ON "events" USING btree ("received_at");--> statement-breakpoint
CREATE INDEX "events_node_ts_idx" ON "events" USING btree ("node_name","timestamp");--> statement-breakpoint
CREATE INDEX "events_type_ts_idx" ON "events" USING btree ("event_type","timestamp");--> statement-breakpoint
CREATE INDEX "events_pot_ts_idx" ON "events" USING btree ("pot_id","timestamp");--> statement-breakpoint
CREATE INDEX "node_log_node_at_idx" ON "node_log" USING btree ("node_name","at");--> statement-breakpoint
CREATE INDEX "nodes_enrollment_idx" ON "nodes" USING btree ("enrollment");--> statement-breakpoint
CREATE INDEX "nodes_pending_source_idx" ON "nodes" USING btree ("pending_source");--> statement-breakpoint
CREATE INDEX "unknown_registrations_last_seen_idx" ON "unknown_registrations" USING btree ("last_seen_at");--> statement-breakpoint
CREATE INDEX "user_sessions_user_idx" ON "user_sessions" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "user_sessions_expires_idx" ON "user_sessions" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "users_username_lower_idx" ON "users" USING btree (lower("username"));