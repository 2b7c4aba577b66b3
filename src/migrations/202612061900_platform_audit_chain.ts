import { sql, type Kysely } from 'kysely';

/**
 * The audit trail becomes a hash chain: each row gets `seq` (1, 2, 3... with no gap), `prev_hash`
 * (the previous row's `hash`; 64 zeros for the first) and `hash`, the SHA-256 of the row's
 * content and `prev_hash` (`gw_audit_event_digest`, which `audit:verify` recomputes in Node).
 *
 * A BEFORE INSERT trigger assigns all three from one head row (`gw_audit_chain_head`) that it
 * locks and updates: the lock is held to the commit, so audited transactions append one after
 * another (the chain follows commit order), a rolled-back one leaves no gap, and a
 * REPEATABLE READ or SERIALIZABLE transaction that could not see the latest head fails with a
 * serialization error (retried by `withTransaction`) instead of forking the chain. The head also
 * tells `audit:verify` where the chain must end, so rows removed from its end are noticed. The
 * head row is made by the first audit row (a new database's tables are all empty).
 *
 * Rows already there are chained in (occurred_at, id) order. A copy of the digest lives in the
 * code (src/platform/audit/chain.ts): changing either breaks verification, on purpose.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table gw_audit_event
      add column seq bigint,
      add column prev_hash text,
      add column hash text`.execute(db);
  // Every field as `<UTF-8 byte length>:<text>;` (null as `-;`): no two rows serialize alike.
  await sql`
    create function gw_audit_field(value text) returns text language sql immutable as $$
      select case when value is null then '-;'
             else octet_length(convert_to(value, 'UTF8'))::text || ':' || value || ';' end
    $$`.execute(db);
  await sql`
    create function gw_audit_event_digest(
      seq bigint, id uuid, occurred_at timestamptz, action text, actor_id uuid,
      subject_type text, subject_id text, ip text, request_id text, data jsonb, prev_hash text
    ) returns text language sql stable as $$
      select encode(sha256(convert_to(
        gw_audit_field('gw-audit-v1')
        || gw_audit_field(seq::text)
        || gw_audit_field(id::text)
        || gw_audit_field(to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || gw_audit_field(action)
        || gw_audit_field(actor_id::text)
        || gw_audit_field(subject_type)
        || gw_audit_field(subject_id)
        || gw_audit_field(ip)
        || gw_audit_field(request_id)
        || gw_audit_field(data::text)
        || gw_audit_field(prev_hash), 'UTF8')), 'hex')
    $$`.execute(db);
  await sql`
    create table gw_audit_chain_head (
      id smallint primary key check (id = 1),
      seq bigint not null,
      hash text not null
    )`.execute(db);

  // Chain the rows written before this migration, oldest first.
  await sql`alter table gw_audit_event disable trigger gw_audit_event_no_update`.execute(db);
  await sql`
    do $$
    declare
      r record;
      n bigint := 0;
      h text := repeat('0', 64);
    begin
      for r in select * from gw_audit_event order by occurred_at, id loop
        n := n + 1;
        update gw_audit_event
           set seq = n,
               prev_hash = h,
               hash = gw_audit_event_digest(n, r.id, r.occurred_at, r.action, r.actor_id,
                        r.subject_type, r.subject_id, r.ip, r.request_id, r.data, h)
         where id = r.id
        returning hash into h;
      end loop;
      if n > 0 then
        insert into gw_audit_chain_head (id, seq, hash) values (1, n, h);
      end if;
    end
    $$`.execute(db);
  await sql`alter table gw_audit_event enable trigger gw_audit_event_no_update`.execute(db);
  await sql`
    alter table gw_audit_event
      alter column seq set not null,
      alter column prev_hash set not null,
      alter column hash set not null`.execute(db);
  await sql`create unique index gw_audit_event_seq_idx on gw_audit_event (seq)`.execute(db);

  await sql`
    create function gw_audit_event_chain() returns trigger language plpgsql as $$
    declare
      head record;
    begin
      select seq, hash into head from gw_audit_chain_head where id = 1 for update;
      if not found then
        -- The first row of the chain: make the head (a concurrent first writer waits on its key).
        insert into gw_audit_chain_head (id, seq, hash) values (1, 0, repeat('0', 64))
          on conflict (id) do nothing;
        select seq, hash into head from gw_audit_chain_head where id = 1 for update;
        if not found then
          -- Made by a transaction this one's snapshot predates (REPEATABLE READ): retry it.
          raise exception 'the audit chain head was created concurrently'
            using errcode = 'serialization_failure';
        end if;
      end if;
      new.seq := head.seq + 1;
      new.prev_hash := head.hash;
      new.hash := gw_audit_event_digest(new.seq, new.id, new.occurred_at, new.action,
        new.actor_id, new.subject_type, new.subject_id, new.ip, new.request_id, new.data,
        new.prev_hash);
      update gw_audit_chain_head set seq = new.seq, hash = new.hash where id = 1;
      return new;
    end
    $$`.execute(db);
  await sql`create trigger gw_audit_event_chain before insert on gw_audit_event for each row execute function gw_audit_event_chain()`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger gw_audit_event_chain on gw_audit_event`.execute(db);
  await sql`drop function gw_audit_event_chain()`.execute(db);
  await sql`drop index gw_audit_event_seq_idx`.execute(db);
  await sql`
    alter table gw_audit_event
      drop column seq,
      drop column prev_hash,
      drop column hash`.execute(db);
  await sql`drop table gw_audit_chain_head`.execute(db);
  await sql`drop function gw_audit_event_digest(bigint, uuid, timestamptz, text, uuid, text, text, text, text, jsonb, text)`.execute(
    db,
  );
  await sql`drop function gw_audit_field(text)`.execute(db);
}
