//! The directory behind sign-in: app registrations, their client secrets (as hashes) and the
//! keys that sign access tokens. Stored beside the reports in every backend. The SQL lives
//! here once; a backend only runs it ([`SqlRunner`]), so the two cannot drift apart.
//!
//! Every column is `TEXT` or `BIGINT` in both dialects (ids as their hyphenated text, times as
//! seconds since the Unix epoch): these tables are small and read once per sign-in, so they
//! need none of the report tables' compact encodings.

use async_trait::async_trait;
use reportroot_model::TenantId;
use uuid::Uuid;

use crate::side_rows::RowDecoder;
use crate::sql::Dialect;
use crate::StorageError;

/// Decodes this module's rows; errors name the directory table.
const ROW: RowDecoder = RowDecoder("directory");

/// An application allowed to sign in with client credentials, in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRegistration {
    /// The application (client) id.
    pub client_id: Uuid,
    /// The tenant whose rows its tokens may touch.
    pub tenant: TenantId,
    /// The service principal's object id: the tokens' `oid` and `sub`.
    pub object_id: Uuid,
    /// Display name.
    pub name: String,
    /// Application permissions granted (the tokens' `roles`).
    pub roles: Vec<String>,
    /// Created, seconds since the epoch.
    pub created: i64,
}

/// One client secret of an app: only its argon2id hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSecret {
    /// The secret's id (Entra's "secret ID", not the value).
    pub secret_id: Uuid,
    /// The app it belongs to.
    pub client_id: Uuid,
    /// The value's first three characters, to tell secrets apart in listings (as Entra shows).
    pub hint: String,
    /// The argon2id hash of the value, as a PHC string.
    pub hash: String,
    /// Created, seconds since the epoch.
    pub created: i64,
    /// Refused from this time on, seconds since the epoch.
    pub expires: i64,
}

/// A key that signs access tokens (RS256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// The `kid` tokens name it by.
    pub kid: String,
    /// The RSA private key, PKCS#1 DER in base64.
    pub private_key: String,
    /// Created, seconds since the epoch.
    pub created: i64,
    /// When a newer key replaced it: it still verifies the tokens it signed until they expire.
    pub retired: Option<i64>,
}

/// A parameter or a column value of the directory's statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// `BIGINT`.
    Int(i64),
    /// `TEXT`.
    Text(String),
}

/// What a backend provides to run the directory's statements.
#[async_trait]
pub trait SqlRunner: Send + Sync {
    /// The dialect statements are written in for this backend.
    fn dialect(&self) -> Dialect;
    /// Runs a statement that returns no rows; the number of rows changed.
    async fn execute(&self, sql: String, params: Vec<SqlValue>) -> Result<u64, StorageError>;
    /// Runs a query; its rows, each column as `Int`, `Text` or `Null`.
    async fn query(
        &self,
        sql: String,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Vec<SqlValue>>, StorageError>;
    /// Runs statements that return no rows in one transaction, and the rows each changed.
    /// With `abort_unless_changed: Some(i)`, when statement `i` changes no row the
    /// transaction stops there and is rolled back (the counts so far are returned).
    async fn transaction(
        &self,
        statements: Vec<(String, Vec<SqlValue>)>,
        abort_unless_changed: Option<usize>,
    ) -> Result<Vec<u64>, StorageError>;
}

/// The directory's tables, for every backend's schema (`CREATE … IF NOT EXISTS`).
pub const DIRECTORY_TABLES: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS reportroot_apps (client_id TEXT NOT NULL PRIMARY KEY, \
     tenant_id TEXT NOT NULL, object_id TEXT NOT NULL, name TEXT NOT NULL, \
     roles TEXT NOT NULL, created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reportroot_app_secrets (secret_id TEXT NOT NULL PRIMARY KEY, \
     client_id TEXT NOT NULL, hint TEXT NOT NULL, hash TEXT NOT NULL, \
     created BIGINT NOT NULL, expires BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS reportroot_app_secrets_by_app ON reportroot_app_secrets (client_id)",
    "CREATE TABLE IF NOT EXISTS reportroot_signing_keys (kid TEXT NOT NULL PRIMARY KEY, \
     private_key TEXT NOT NULL, created BIGINT NOT NULL, retired BIGINT)",
];

/// The directory's operations, over a backend's [`SqlRunner`].
pub struct Directory<'a> {
    runner: &'a dyn SqlRunner,
}

const APP_COLUMNS: &str = "client_id, tenant_id, object_id, name, roles, created";
const SECRET_COLUMNS: &str = "secret_id, client_id, hint, hash, created, expires";

impl<'a> Directory<'a> {
    /// The directory stored where `runner` runs statements.
    pub fn new(runner: &'a dyn SqlRunner) -> Self {
        Directory { runner }
    }

    /// `?1, ?2, …` or `$1, $2, …`.
    fn params(&self, count: usize) -> String {
        let dialect = self.runner.dialect();
        (1..=count)
            .map(|n| dialect.param(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn p(&self, n: usize) -> String {
        self.runner.dialect().param(n)
    }

    /// Stores a new app registration.
    pub async fn add_app(&self, app: &AppRegistration) -> Result<(), StorageError> {
        let sql = format!(
            "INSERT INTO reportroot_apps ({APP_COLUMNS}) VALUES ({})",
            self.params(6)
        );
        let params = vec![
            text(app.client_id),
            text(app.tenant.0),
            text(app.object_id),
            SqlValue::Text(app.name.clone()),
            SqlValue::Text(app.roles.join(" ")),
            SqlValue::Int(app.created),
        ];
        self.runner.execute(sql, params).await.map(drop)
    }

    /// The app registrations, of one tenant or of all, oldest first.
    pub async fn apps(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Vec<AppRegistration>, StorageError> {
        let (condition, params) = match tenant {
            Some(tenant) => (
                format!("WHERE tenant_id = {}", self.p(1)),
                vec![text(tenant.0)],
            ),
            None => (String::new(), Vec::new()),
        };
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM reportroot_apps {condition} ORDER BY created, client_id"
        );
        let rows = self.runner.query(sql, params).await?;
        rows.into_iter().map(read_app).collect()
    }

    /// One app registration and its secrets.
    pub async fn app(
        &self,
        client_id: Uuid,
    ) -> Result<Option<(AppRegistration, Vec<AppSecret>)>, StorageError> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM reportroot_apps WHERE client_id = {}",
            self.p(1)
        );
        let Some(row) = self.runner.query(sql, vec![text(client_id)]).await?.pop() else {
            return Ok(None);
        };
        let app = read_app(row)?;
        Ok(Some((app, self.secrets(client_id).await?)))
    }

    /// An app's secrets, newest first.
    pub async fn secrets(&self, client_id: Uuid) -> Result<Vec<AppSecret>, StorageError> {
        let sql = format!(
            "SELECT {SECRET_COLUMNS} FROM reportroot_app_secrets WHERE client_id = {} \
             ORDER BY created DESC, secret_id",
            self.p(1)
        );
        let rows = self.runner.query(sql, vec![text(client_id)]).await?;
        rows.into_iter().map(read_secret).collect()
    }

    /// Whether any app is registered in `tenant`: a tenant the token endpoint knows.
    pub async fn has_tenant(&self, tenant: TenantId) -> Result<bool, StorageError> {
        let sql = format!(
            "SELECT client_id FROM reportroot_apps WHERE tenant_id = {} LIMIT 1",
            self.p(1)
        );
        Ok(!self
            .runner
            .query(sql, vec![text(tenant.0)])
            .await?
            .is_empty())
    }

    /// Deletes an app and its secrets; false if there was none.
    pub async fn remove_app(&self, client_id: Uuid) -> Result<bool, StorageError> {
        // Secrets first: if the second statement fails, the app is left without a way in.
        let secrets = format!(
            "DELETE FROM reportroot_app_secrets WHERE client_id = {}",
            self.p(1)
        );
        self.runner.execute(secrets, vec![text(client_id)]).await?;
        let app = format!(
            "DELETE FROM reportroot_apps WHERE client_id = {}",
            self.p(1)
        );
        Ok(self.runner.execute(app, vec![text(client_id)]).await? > 0)
    }

    /// Stores a new secret (its hash).
    pub async fn add_secret(&self, secret: &AppSecret) -> Result<(), StorageError> {
        let sql = format!(
            "INSERT INTO reportroot_app_secrets ({SECRET_COLUMNS}) VALUES ({})",
            self.params(6)
        );
        let params = vec![
            text(secret.secret_id),
            text(secret.client_id),
            SqlValue::Text(secret.hint.clone()),
            SqlValue::Text(secret.hash.clone()),
            SqlValue::Int(secret.created),
            SqlValue::Int(secret.expires),
        ];
        self.runner.execute(sql, params).await.map(drop)
    }

    /// Deletes one secret of an app; false if it has no such secret.
    pub async fn remove_secret(
        &self,
        client_id: Uuid,
        secret_id: Uuid,
    ) -> Result<bool, StorageError> {
        let sql = format!(
            "DELETE FROM reportroot_app_secrets WHERE client_id = {} AND secret_id = {}",
            self.p(1),
            self.p(2)
        );
        let changed = self
            .runner
            .execute(sql, vec![text(client_id), text(secret_id)])
            .await?;
        Ok(changed > 0)
    }

    /// Every signing key, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKey>, StorageError> {
        let sql = "SELECT kid, private_key, created, retired FROM reportroot_signing_keys \
                   ORDER BY created DESC, kid DESC"
            .to_owned();
        let rows = self.runner.query(sql, Vec::new()).await?;
        rows.into_iter().map(read_key).collect()
    }

    /// Adds `key` as the current signing key: every other current key is retired at its
    /// creation time, and keys retired before `forget_before` are deleted.
    pub async fn rotate_signing_key(
        &self,
        key: &SigningKey,
        forget_before: i64,
    ) -> Result<(), StorageError> {
        let insert = format!(
            "INSERT INTO reportroot_signing_keys (kid, private_key, created, retired) \
             VALUES ({}, NULL)",
            self.params(3)
        );
        let params = vec![
            SqlValue::Text(key.kid.clone()),
            SqlValue::Text(key.private_key.clone()),
            SqlValue::Int(key.created),
        ];
        self.runner.execute(insert, params).await?;
        let retire = format!(
            "UPDATE reportroot_signing_keys SET retired = {} WHERE retired IS NULL AND kid <> {}",
            self.p(1),
            self.p(2)
        );
        let params = vec![SqlValue::Int(key.created), SqlValue::Text(key.kid.clone())];
        self.runner.execute(retire, params).await?;
        let forget = format!(
            "DELETE FROM reportroot_signing_keys WHERE retired IS NOT NULL AND retired < {}",
            self.p(1)
        );
        self.runner
            .execute(forget, vec![SqlValue::Int(forget_before)])
            .await
            .map(drop)
    }
}

fn text(id: Uuid) -> SqlValue {
    SqlValue::Text(id.to_string())
}

fn read_app(mut row: Vec<SqlValue>) -> Result<AppRegistration, StorageError> {
    if row.len() != 6 {
        return Err(ROW.corrupt("app row"));
    }
    Ok(AppRegistration {
        client_id: ROW.uuid(&mut row[0], "client id")?,
        tenant: TenantId(ROW.uuid(&mut row[1], "tenant id")?),
        object_id: ROW.uuid(&mut row[2], "object id")?,
        name: ROW.text(&mut row[3], "app name")?,
        roles: ROW
            .text(&mut row[4], "role list")?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        created: ROW.int(&row[5], "creation time")?,
    })
}

fn read_secret(mut row: Vec<SqlValue>) -> Result<AppSecret, StorageError> {
    if row.len() != 6 {
        return Err(ROW.corrupt("secret row"));
    }
    Ok(AppSecret {
        secret_id: ROW.uuid(&mut row[0], "secret id")?,
        client_id: ROW.uuid(&mut row[1], "client id")?,
        hint: ROW.text(&mut row[2], "secret hint")?,
        hash: ROW.text(&mut row[3], "secret hash")?,
        created: ROW.int(&row[4], "creation time")?,
        expires: ROW.int(&row[5], "expiry")?,
    })
}

fn read_key(mut row: Vec<SqlValue>) -> Result<SigningKey, StorageError> {
    if row.len() != 4 {
        return Err(ROW.corrupt("signing key row"));
    }
    Ok(SigningKey {
        kid: ROW.text(&mut row[0], "key id")?,
        private_key: ROW.text(&mut row[1], "private key")?,
        created: ROW.int(&row[2], "creation time")?,
        retired: match &row[3] {
            SqlValue::Null => None,
            other => Some(ROW.int(other, "retirement time")?),
        },
    })
}
