//! The dashboard's accounts: users (argon2id password hashes), the tenants each may see
//! (and write), their sign-in sessions (SHA-256 hashes of the session tokens) and the
//! tenants' display names. Stored beside the directory in every backend, with the SQL written
//! once here as the directory's is ([`SqlRunner`]); on Citus these `reportroot_…` tables
//! become reference tables like the directory's.
//!
//! Nothing here holds a secret in clear: a password is kept as its argon2id PHC string and a
//! session token as its SHA-256 digest (the callers hash; this module never sees either).

use std::collections::HashSet;
use std::sync::Mutex;

use reportroot_model::{TenantId, REPORTS};
use uuid::Uuid;

use crate::directory::{SqlRunner, SqlValue};
use crate::side_rows::RowDecoder;
use crate::sql::Dialect;
use crate::StorageError;

/// Decodes this module's rows; errors name the accounts table.
const ROW: RowDecoder = RowDecoder("accounts");

/// The accounts' tables, for every backend's schema (`CREATE … IF NOT EXISTS`).
pub const ACCOUNT_TABLES: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS reportroot_users (name TEXT NOT NULL PRIMARY KEY, \
     password_hash TEXT NOT NULL, operator BIGINT NOT NULL, created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reportroot_user_tenants (user_name TEXT NOT NULL, \
     tenant_id TEXT NOT NULL, can_write BIGINT NOT NULL, PRIMARY KEY (user_name, tenant_id))",
    "CREATE TABLE IF NOT EXISTS reportroot_sessions (token_hash TEXT NOT NULL PRIMARY KEY, \
     user_name TEXT NOT NULL, csrf_token TEXT NOT NULL, created BIGINT NOT NULL, \
     expires BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS reportroot_sessions_by_user ON reportroot_sessions (user_name)",
    "CREATE INDEX IF NOT EXISTS reportroot_sessions_by_expiry ON reportroot_sessions (expires)",
    "CREATE TABLE IF NOT EXISTS reportroot_tenants (tenant_id TEXT NOT NULL PRIMARY KEY, \
     display_name TEXT)",
    // Sessions of people signed in by an external issuer who are no dashboard user: read-only
    // to exactly one tenant (the token's `tid`). Why no schema version: the table is created
    // at every start like the others, and an older binary refuses such a session (its user
    // name, which has a space, names no user), so nothing leaks to a binary that ignores it.
    "CREATE TABLE IF NOT EXISTS reportroot_session_tenants (token_hash TEXT NOT NULL \
     PRIMARY KEY, tenant_id TEXT NOT NULL, expires BIGINT NOT NULL)",
];

/// The statements that fill `reportroot_tenants` from the tenants that already have rows (or
/// apps): run by a migration that adds the table to a database with data.
pub fn tenant_backfill(dialect: Dialect) -> Vec<String> {
    // SQLite keeps ids as 16-byte BLOBs; the accounts' tables keep them as hyphenated text.
    let id_text = match dialect {
        Dialect::Sqlite => {
            "lower(substr(hex(tenant_id), 1, 8) || '-' || substr(hex(tenant_id), 9, 4) || '-' || \
             substr(hex(tenant_id), 13, 4) || '-' || substr(hex(tenant_id), 17, 4) || '-' || \
             substr(hex(tenant_id), 21, 12))"
        }
        Dialect::Postgres => "tenant_id::text",
    };
    let insert = |select: String| match dialect {
        Dialect::Sqlite => {
            format!("INSERT OR IGNORE INTO reportroot_tenants (tenant_id, display_name) {select}")
        }
        Dialect::Postgres => format!(
            "INSERT INTO reportroot_tenants (tenant_id, display_name) {select} \
             ON CONFLICT DO NOTHING"
        ),
    };
    REPORTS
        .iter()
        .map(|report| {
            insert(format!(
                "SELECT DISTINCT {id_text}, NULL FROM {}",
                report.table_name()
            ))
        })
        .chain(std::iter::once(insert(
            "SELECT DISTINCT tenant_id, NULL FROM reportroot_apps".to_owned(),
        )))
        .collect()
}

/// A user's access to one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The tenant.
    pub tenant: TenantId,
    /// Whether the user may write (import) to it, besides reading.
    pub write: bool,
}

/// A dashboard user, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The sign-in name.
    pub name: String,
    /// An operator reads and writes every tenant (`--all-tenants`); `grants` is then empty.
    pub operator: bool,
    /// The tenants granted, by tenant id.
    pub grants: Vec<Grant>,
    /// Created, seconds since the epoch.
    pub created: i64,
}

/// A tenant and its display name (`None` until one is given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName {
    /// The tenant.
    pub tenant: TenantId,
    /// Its display name.
    pub display_name: Option<String>,
}

/// A session to store: the token's SHA-256 digest (hex), never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The SHA-256 digest of the session token, lower-case hex.
    pub token_hash: String,
    /// The signed-in user.
    pub user: String,
    /// The session's CSRF token (useless without the session cookie, so kept as it is: the
    /// dashboard hands it to its pages).
    pub csrf_token: String,
    /// Created, seconds since the epoch.
    pub created: i64,
    /// Refused from this time on, seconds since the epoch.
    pub expires: i64,
}

/// A valid session, read with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The signed-in user.
    pub user: String,
    /// Whether the user is an operator (every tenant).
    pub operator: bool,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Refused from this time on, seconds since the epoch.
    pub expires: i64,
    /// The user's tenants with their display names (empty for an operator).
    pub tenants: Vec<(Grant, Option<String>)>,
}

/// Tenants known to be in `reportroot_tenants`, so that a write notes its tenant with one
/// statement the first time only. Bounded: emptied when full (a tenant noted again costs one
/// `INSERT … ON CONFLICT DO NOTHING`).
#[derive(Debug, Default)]
pub struct KnownTenants {
    known: Mutex<HashSet<Uuid>>,
}

/// Most tenants [`KnownTenants`] remembers (16 bytes each).
const MAX_KNOWN_TENANTS: usize = 100_000;

impl KnownTenants {
    /// Whether `tenant` was noted before.
    pub fn contains(&self, tenant: TenantId) -> bool {
        self.lock().contains(&tenant.0)
    }

    /// Remembers that `tenant` is stored.
    pub fn insert(&self, tenant: TenantId) {
        let mut known = self.lock();
        if known.len() >= MAX_KNOWN_TENANTS {
            known.clear();
        }
        known.insert(tenant.0);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The accounts' operations, over a backend's [`SqlRunner`].
pub struct Accounts<'a> {
    runner: &'a dyn SqlRunner,
}

impl<'a> Accounts<'a> {
    /// The accounts stored where `runner` runs statements.
    pub fn new(runner: &'a dyn SqlRunner) -> Self {
        Accounts { runner }
    }

    fn p(&self, n: usize) -> String {
        self.runner.dialect().param(n)
    }

    /// Adds a user with a password hash and grants; false (nothing written) if the name is
    /// taken. The granted tenants are noted as known tenants.
    pub async fn add_user(&self, user: &User, password_hash: &str) -> Result<bool, StorageError> {
        let insert = format!(
            "INSERT INTO reportroot_users (name, password_hash, operator, created) \
             VALUES ({}, {}, {}, {}) ON CONFLICT DO NOTHING",
            self.p(1),
            self.p(2),
            self.p(3),
            self.p(4)
        );
        let mut statements = vec![(
            insert,
            vec![
                SqlValue::Text(user.name.clone()),
                SqlValue::Text(password_hash.to_owned()),
                SqlValue::Int(i64::from(user.operator)),
                SqlValue::Int(user.created),
            ],
        )];
        for grant in &user.grants {
            statements.push(self.grant_statement(&user.name, grant));
            statements.push(self.note_tenant_statement(grant.tenant));
        }
        // The user's row first: if its name was taken, the transaction is rolled back.
        let changed = self.runner.transaction(statements, Some(0)).await?;
        Ok(changed.first().is_some_and(|&n| n == 1))
    }

    fn grant_statement(&self, user: &str, grant: &Grant) -> (String, Vec<SqlValue>) {
        (
            format!(
                "INSERT INTO reportroot_user_tenants (user_name, tenant_id, can_write) \
                 VALUES ({}, {}, {})",
                self.p(1),
                self.p(2),
                self.p(3)
            ),
            vec![
                SqlValue::Text(user.to_owned()),
                SqlValue::Text(grant.tenant.0.to_string()),
                SqlValue::Int(i64::from(grant.write)),
            ],
        )
    }

    fn note_tenant_statement(&self, tenant: TenantId) -> (String, Vec<SqlValue>) {
        (
            format!(
                "INSERT INTO reportroot_tenants (tenant_id, display_name) VALUES ({}, NULL) \
                 ON CONFLICT DO NOTHING",
                self.p(1)
            ),
            vec![SqlValue::Text(tenant.0.to_string())],
        )
    }

    /// Every user with their grants, by name.
    pub async fn users(&self) -> Result<Vec<User>, StorageError> {
        let sql = "SELECT u.name, u.operator, u.created, g.tenant_id, g.can_write \
                   FROM reportroot_users u \
                   LEFT JOIN reportroot_user_tenants g ON g.user_name = u.name \
                   ORDER BY u.name, g.tenant_id"
            .to_owned();
        let mut users: Vec<User> = Vec::new();
        for mut row in self.runner.query(sql, Vec::new()).await? {
            if row.len() != 5 {
                return Err(ROW.corrupt("user row"));
            }
            let name = ROW.text(&mut row[0], "user name")?;
            if users.last().is_none_or(|last| last.name != name) {
                users.push(User {
                    name,
                    operator: ROW.int(&row[1], "operator flag")? != 0,
                    grants: Vec::new(),
                    created: ROW.int(&row[2], "creation time")?,
                });
            }
            if let SqlValue::Text(tenant) = &row[3] {
                let tenant = Uuid::parse_str(tenant).map_err(|_| ROW.corrupt("tenant id"))?;
                if let Some(user) = users.last_mut() {
                    user.grants.push(Grant {
                        tenant: TenantId(tenant),
                        write: ROW.int(&row[4], "write flag")? != 0,
                    });
                }
            }
        }
        Ok(users)
    }

    /// A user's password hash, or `None` if there is no such user.
    pub async fn password_hash(&self, name: &str) -> Result<Option<String>, StorageError> {
        let sql = format!(
            "SELECT password_hash FROM reportroot_users WHERE name = {}",
            self.p(1)
        );
        let mut rows = self
            .runner
            .query(sql, vec![SqlValue::Text(name.to_owned())])
            .await?;
        match rows.pop() {
            Some(mut row) if row.len() == 1 => Ok(Some(ROW.text(&mut row[0], "password hash")?)),
            Some(_) => Err(ROW.corrupt("password row")),
            None => Ok(None),
        }
    }

    /// Sets a user's password hash and ends every session of the user; false if there is no
    /// such user.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let update = format!(
            "UPDATE reportroot_users SET password_hash = {} WHERE name = {}",
            self.p(1),
            self.p(2)
        );
        let statements = vec![
            (
                update,
                vec![
                    SqlValue::Text(password_hash.to_owned()),
                    SqlValue::Text(name.to_owned()),
                ],
            ),
            self.sessions_of(name),
        ];
        let changed = self.runner.transaction(statements, Some(0)).await?;
        Ok(changed.first().is_some_and(|&n| n == 1))
    }

    fn sessions_of(&self, name: &str) -> (String, Vec<SqlValue>) {
        (
            format!(
                "DELETE FROM reportroot_sessions WHERE user_name = {}",
                self.p(1)
            ),
            vec![SqlValue::Text(name.to_owned())],
        )
    }

    /// Deletes a user, their grants and sessions; false if there was none.
    pub async fn remove_user(&self, name: &str) -> Result<bool, StorageError> {
        let by_name = |table: &str, column: &str| {
            (
                format!("DELETE FROM {table} WHERE {column} = {}", self.p(1)),
                vec![SqlValue::Text(name.to_owned())],
            )
        };
        let statements = vec![
            by_name("reportroot_users", "name"),
            by_name("reportroot_user_tenants", "user_name"),
            self.sessions_of(name),
        ];
        let changed = self.runner.transaction(statements, Some(0)).await?;
        Ok(changed.first().is_some_and(|&n| n == 1))
    }

    /// Stores a new session, and deletes the sessions that expired before it began (so the
    /// table holds only live sessions and those of the last sign-in's moment).
    pub async fn create_session(&self, session: &NewSession) -> Result<(), StorageError> {
        let statements = self.session_statements(session);
        self.runner.transaction(statements, None).await.map(drop)
    }

    /// Stores a new session that reads exactly `tenant` and nothing else, whatever
    /// `session.user` names (someone signed in by an external issuer who is no dashboard
    /// user); expired sessions are deleted as by [`Accounts::create_session`].
    pub async fn create_tenant_session(
        &self,
        session: &NewSession,
        tenant: TenantId,
    ) -> Result<(), StorageError> {
        let mut statements = self.session_statements(session);
        statements.push((
            format!(
                "DELETE FROM reportroot_session_tenants WHERE expires <= {}",
                self.p(1)
            ),
            vec![SqlValue::Int(session.created)],
        ));
        statements.push((
            format!(
                "INSERT INTO reportroot_session_tenants (token_hash, tenant_id, expires) \
                 VALUES ({}, {}, {})",
                self.p(1),
                self.p(2),
                self.p(3)
            ),
            vec![
                SqlValue::Text(session.token_hash.clone()),
                SqlValue::Text(tenant.0.to_string()),
                SqlValue::Int(session.expires),
            ],
        ));
        self.runner.transaction(statements, None).await.map(drop)
    }

    /// The purge of expired sessions and the insert of `session`.
    fn session_statements(&self, session: &NewSession) -> Vec<(String, Vec<SqlValue>)> {
        let insert = format!(
            "INSERT INTO reportroot_sessions (token_hash, user_name, csrf_token, created, expires) \
             VALUES ({}, {}, {}, {}, {})",
            self.p(1),
            self.p(2),
            self.p(3),
            self.p(4),
            self.p(5)
        );
        let purge = format!(
            "DELETE FROM reportroot_sessions WHERE expires <= {}",
            self.p(1)
        );
        vec![
            (purge, vec![SqlValue::Int(session.created)]),
            (
                insert,
                vec![
                    SqlValue::Text(session.token_hash.clone()),
                    SqlValue::Text(session.user.clone()),
                    SqlValue::Text(session.csrf_token.clone()),
                    SqlValue::Int(session.created),
                    SqlValue::Int(session.expires),
                ],
            ),
        ]
    }

    /// The session whose token hashes to `token_hash`, if it exists, its user does (or it is
    /// a one-tenant session of [`Accounts::create_tenant_session`]), and it has not expired at
    /// `now`. One query (the user's grants, or the session's one tenant, joined in).
    pub async fn session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<Session>, StorageError> {
        let sql = format!(
            "SELECT s.user_name, COALESCE(u.operator, 0), s.csrf_token, s.expires, \
             COALESCE(st.tenant_id, g.tenant_id), COALESCE(g.can_write, 0), t.display_name \
             FROM reportroot_sessions s \
             LEFT JOIN reportroot_session_tenants st ON st.token_hash = s.token_hash \
             LEFT JOIN reportroot_users u ON u.name = s.user_name AND st.token_hash IS NULL \
             LEFT JOIN reportroot_user_tenants g ON g.user_name = u.name \
             LEFT JOIN reportroot_tenants t ON t.tenant_id = COALESCE(st.tenant_id, g.tenant_id) \
             WHERE s.token_hash = {} AND s.expires > {} \
             AND (u.name IS NOT NULL OR st.token_hash IS NOT NULL) ORDER BY 5",
            self.p(1),
            self.p(2)
        );
        let params = vec![SqlValue::Text(token_hash.to_owned()), SqlValue::Int(now)];
        let rows = self.runner.query(sql, params).await?;
        let mut session: Option<Session> = None;
        for mut row in rows {
            if row.len() != 7 {
                return Err(ROW.corrupt("session row"));
            }
            let session = match &mut session {
                Some(session) => session,
                None => session.insert(Session {
                    user: ROW.text(&mut row[0], "user name")?,
                    operator: ROW.int(&row[1], "operator flag")? != 0,
                    csrf_token: ROW.text(&mut row[2], "CSRF token")?,
                    expires: ROW.int(&row[3], "expiry")?,
                    tenants: Vec::new(),
                }),
            };
            if let SqlValue::Text(tenant) = &row[4] {
                let tenant = Uuid::parse_str(tenant).map_err(|_| ROW.corrupt("tenant id"))?;
                let name = match std::mem::replace(&mut row[6], SqlValue::Null) {
                    SqlValue::Text(name) => Some(name),
                    _ => None,
                };
                let grant = Grant {
                    tenant: TenantId(tenant),
                    write: ROW.int(&row[5], "write flag")? != 0,
                };
                session.tenants.push((grant, name));
            }
        }
        Ok(session)
    }

    /// Ends the session whose token hashes to `token_hash`; false if there was none.
    pub async fn revoke_session(&self, token_hash: &str) -> Result<bool, StorageError> {
        let by_hash = |table: &str| {
            (
                format!("DELETE FROM {table} WHERE token_hash = {}", self.p(1)),
                vec![SqlValue::Text(token_hash.to_owned())],
            )
        };
        let statements = vec![
            by_hash("reportroot_sessions"),
            by_hash("reportroot_session_tenants"),
        ];
        let changed = self.runner.transaction(statements, None).await?;
        Ok(changed.first().is_some_and(|&n| n > 0))
    }

    /// Whether `tenant` is known (has rows, apps or grants, or a display name).
    pub async fn is_known_tenant(&self, tenant: TenantId) -> Result<bool, StorageError> {
        let sql = format!(
            "SELECT tenant_id FROM reportroot_tenants WHERE tenant_id = {}",
            self.p(1)
        );
        let rows = self
            .runner
            .query(sql, vec![SqlValue::Text(tenant.0.to_string())])
            .await?;
        Ok(!rows.is_empty())
    }

    /// Every known tenant, by display name (unnamed ones last), then id.
    pub async fn tenants(&self) -> Result<Vec<TenantName>, StorageError> {
        let sql = "SELECT tenant_id, display_name FROM reportroot_tenants \
                   ORDER BY display_name IS NULL, display_name, tenant_id"
            .to_owned();
        let rows = self.runner.query(sql, Vec::new()).await?;
        rows.into_iter()
            .map(|mut row| {
                if row.len() != 2 {
                    return Err(ROW.corrupt("tenant row"));
                }
                let id = ROW.text(&mut row[0], "tenant id")?;
                Ok(TenantName {
                    tenant: TenantId(Uuid::parse_str(&id).map_err(|_| ROW.corrupt("tenant id"))?),
                    display_name: match std::mem::replace(&mut row[1], SqlValue::Null) {
                        SqlValue::Text(name) => Some(name),
                        _ => None,
                    },
                })
            })
            .collect()
    }

    /// Records `tenant` as known (nothing if it is).
    pub async fn note_tenant(&self, tenant: TenantId) -> Result<(), StorageError> {
        let (sql, params) = self.note_tenant_statement(tenant);
        self.runner.execute(sql, params).await.map(drop)
    }

    /// Gives `tenant` a display name, recording it as known if it was not.
    pub async fn rename_tenant(&self, tenant: TenantId, name: &str) -> Result<(), StorageError> {
        let update = format!(
            "UPDATE reportroot_tenants SET display_name = {} WHERE tenant_id = {}",
            self.p(1),
            self.p(2)
        );
        let params = vec![
            SqlValue::Text(name.to_owned()),
            SqlValue::Text(tenant.0.to_string()),
        ];
        let statements = vec![self.note_tenant_statement(tenant), (update, params)];
        self.runner.transaction(statements, None).await.map(drop)
    }
}
