//! `serve --pg-listen`: the lake over the Postgres wire protocol, for BI tools
//! (Grafana, Metabase, DBeaver, psql).
//!
//! Each connection gets a session of its own over the newest version of the
//! lake: `requests`, `usage_hourly`, `ingested`, one view per meter
//! (`meter_<slug>`: per key and UTC hour, over all time) and one view per
//! named query of `queries/` (over all time, other parameters at their
//! defaults), plus the `pg_catalog` tools read on connect. A connection keeps
//! the version it opened; a new connection sees the ingests committed since.
//!
//! The password is an admin token of the tokens file (any user name); only
//! reads run: writes, DDL and session changes beyond a client's display
//! settings are refused before anything is planned.

use super::Shared;
use crate::billing::metering::{MeterQuery, Per};
use crate::error::{Error, Result};
use crate::query::usage::WindowUnit;
use crate::query::{LakeSession, library, status_params};
use crate::time::TimeRange;
use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::{
    ClientInfo, PgWireConnectionState, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use datafusion_postgres::pgwire::tokio::{TlsAcceptor, process_socket};
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::{Sink, SinkExt};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Where and how the Postgres wire is served.
#[derive(Debug, Clone)]
pub(crate) struct PgOptions {
    pub(crate) listen: SocketAddr,
    /// Certificate chain and private key (PEM); plaintext when `None`.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
}

/// The settings a client may change on its connection: how values are shown
/// to it. They are what JDBC, psql and Grafana send on connect.
const SETTABLE: &[&str] = &[
    "application_name",
    "bytea_output",
    "datestyle",
    "extra_float_digits",
    "intervalstyle",
    "search_path",
];

/// SQLSTATE `read_only_sql_transaction`.
const READ_ONLY: &str = "25006";

/// Loads TLS and binds the listener, so that a configuration that cannot
/// serve stops `serve` before anything is served; then accepts connections
/// in the background.
pub(super) async fn start(server: Shared, options: &PgOptions) -> Result<()> {
    let tls = options
        .tls
        .as_ref()
        .map(|(c, k)| tls_acceptor(c, k))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| {
            Error::Config(format!(
                "--pg-listen {}: cannot listen there: {e}",
                options.listen
            ))
        })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("<pg listener>", e))?;
    let scheme = if tls.is_some() { "TLS" } else { "plaintext" };
    // Tests and scripts wait for this line, as for the HTTP one.
    eprintln!("edgemeter: serving Postgres on {bound} ({scheme})");
    tokio::spawn(accept(server, listener, tls));
    Ok(())
}

/// Postgres connections served at once. A connection's session is built
/// before its password is checked, so this also bounds what clients that
/// never log in can make the server hold; one past it is closed at once.
const MAX_CONNECTIONS: usize = 64;

async fn accept(server: Shared, listener: tokio::net::TcpListener, tls: Option<TlsAcceptor>) {
    let pids = Arc::new(RandomPidSecretKeyGenerator::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "Postgres: cannot accept a connection");
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "Postgres: {MAX_CONNECTIONS} connections already open; closed");
            drop(socket);
            continue;
        };
        let server = server.clone();
        let tls = tls.clone();
        let pids = pids.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let connection = match Connection::open(&server, tls.is_some(), pids).await {
                Ok(connection) => connection,
                Err(e) => {
                    tracing::error!(error = %e, %peer, "Postgres: the lake could not be read");
                    return;
                }
            };
            if let Err(e) = process_socket(socket, tls, Arc::new(connection)).await {
                tracing::info!(error = %e, %peer, "Postgres: connection ended");
            }
        });
    }
}

/// Certificate chain and key as rustls serves them. Any failure is a
/// configuration error: serving plaintext instead would leak the tokens
/// clients send as passwords.
fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |flag: &str, path: &PathBuf, reason: String| {
        Error::Config(format!("{flag} {}: {reason}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("--pg-tls-cert", cert, e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("--pg-tls-cert", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(
            "--pg-tls-cert",
            cert,
            "no PEM certificate in it".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        bad(
            "--pg-tls-key",
            key,
            format!("no usable PEM private key: {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            Error::Config(format!(
                "--pg-tls-cert {} / --pg-tls-key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One client connection: its login and its session.
struct Connection {
    login: Arc<TokenLogin>,
    session: Arc<DfSessionService>,
}

impl Connection {
    async fn open(
        server: &Shared,
        require_tls: bool,
        pids: Arc<RandomPidSecretKeyGenerator>,
    ) -> Result<Self> {
        let lake = server.view.session().await?;
        let ctx = connection_context(&lake, &server.plans).await?;
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(ReadOnly),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        Ok(Self {
            login: Arc::new(TokenLogin {
                server: server.clone(),
                require_tls,
                pids,
            }),
            session: Arc::new(DfSessionService::new_with_hooks(Arc::new(ctx), hooks)),
        })
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(
        &self,
    ) -> Arc<impl datafusion_postgres::pgwire::api::query::SimpleQueryHandler> {
        self.session.clone()
    }

    fn extended_query_handler(
        &self,
    ) -> Arc<impl datafusion_postgres::pgwire::api::query::ExtendedQueryHandler> {
        self.session.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.login.clone()
    }
}

/// A session of its own for one connection, sharing the lake session's
/// tables and memory pool: what a client registers or sets stays on its
/// connection.
async fn connection_context(
    lake: &LakeSession,
    plans: &crate::billing::plans::Plans,
) -> Result<SessionContext> {
    let source = lake.context();
    let mut ctx = SessionContext::new_with_config_rt(source.copied_config(), source.runtime_env());
    crate::query::udf::register(&ctx);
    for table in [
        "requests",
        "usage_hourly",
        "usage_hourly_keys",
        "usage_daily_totals",
        "ingested",
    ] {
        ctx.register_table(table, source.table_provider(table).await?)?;
    }
    for meter in plans.meters.iter() {
        let query = MeterQuery {
            range: TimeRange {
                from: None,
                to: None,
            },
            meters: vec![meter],
            per: Per::Key,
            by: Some(WindowUnit::Hour),
            tz: None,
            keys: Vec::new(),
        };
        let (sql, params) = query.sql()?;
        let view = ctx
            .sql(&sql)
            .await?
            .with_param_values(params)?
            .with_column_renamed(&meter.slug, "value")?
            .into_view();
        ctx.register_table(format!("meter_{}", meter.slug), view)?;
    }
    for query in library::QUERIES {
        let mut params = query.bind(&[])?;
        params.extend(status_params());
        let view = ctx
            .sql(query.sql)
            .await?
            .with_param_values(params)
            .map_err(|e| Error::Query {
                name: query.name.to_string(),
                reason: e.to_string(),
            })?
            .into_view();
        ctx.register_table(query.name, view)?;
    }
    setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider)
        .map_err(|e| Error::DataFusion(*e))?;
    datafusion_postgres::datafusion_pg_functions::register_all(&mut ctx);
    Ok(ctx)
}

/// Cleartext password login (inside TLS when configured): the password is
/// an admin token, checked as the HTTP server checks bearer tokens.
struct TokenLogin {
    server: Shared,
    /// With TLS configured, a client that did not ask for it is refused
    /// before it sends its password.
    require_tls: bool,
    pids: Arc<RandomPidSecretKeyGenerator>,
}

#[async_trait]
impl StartupHandler for TokenLogin {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if self.require_tls && !client.is_secure() {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "FATAL".into(),
                        // invalid_authorization_specification
                        "28000".into(),
                        "this server takes TLS connections only (sslmode=require)".into(),
                    ))));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let password = password.into_password()?;
                let caller = self
                    .server
                    .tokens
                    .tokens()
                    .caller(&password.password, chrono::Utc::now());
                if !matches!(caller, Some(super::access::Caller::Admin { .. })) {
                    let user = client
                        .metadata()
                        .get(datafusion_postgres::pgwire::api::METADATA_USER)
                        .cloned()
                        .unwrap_or_default();
                    return Err(PgWireError::InvalidPassword(user));
                }
                let (pid, secret) = self.pids.generate(&*client);
                client.set_pid_and_secret_key(pid, secret);
                // The query time limit of `serve`, which `SET` may not lift;
                // datafusion-postgres reads a statement's timeout from this
                // connection setting.
                let limit_ms = self.server.limits.query.timeout_secs.saturating_mul(1000);
                client
                    .metadata_mut()
                    .insert("statement_timeout_ms".into(), limit_ms.to_string());
                finish_authentication(client, &DefaultServerParameterProvider::default()).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Refuses every statement but reads, catalog look-ups, transactions
/// (nothing to commit), cursors over reads and the display [`SETTABLE`]s.
struct ReadOnly;

fn refusal(statement: &Statement) -> Option<PgWireError> {
    if allowed(statement) {
        return None;
    }
    let what = statement.to_string();
    let what: String = what.chars().take(60).collect();
    Some(PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        READ_ONLY.into(),
        format!(
            "edgemeter serves the lake read-only (SELECT, WITH, EXPLAIN, SHOW, and SET of {}): refused {what}",
            SETTABLE.join(", ")
        ),
    ))))
}

fn allowed(statement: &Statement) -> bool {
    match statement {
        Statement::Query(_)
        | Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ExplainTable { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. } => true,
        Statement::Explain { statement, .. } => allowed(statement),
        Statement::Declare { stmts } => stmts.iter().all(|d| {
            d.for_query
                .as_deref()
                .is_some_and(|q| allowed(&Statement::Query(Box::new(q.clone()))))
        }),
        Statement::Set(Set::SingleAssignment {
            scope: None,
            hivevar: false,
            variable,
            ..
        }) => SETTABLE.contains(&variable.to_string().to_lowercase().as_str()),
        Statement::Set(Set::SetTimeZone { local: false, .. }) => true,
        _ => false,
    }
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        refusal(statement).map(Err)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        refusal(statement).map(Err)
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        refusal(statement).map(Err)
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn check(sql: &str) -> bool {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        statements.iter().all(allowed)
    }

    #[test]
    fn reads_and_display_settings_pass_and_everything_else_is_refused() {
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT 1",
            "SHOW TABLES",
            "SHOW search_path",
            "SET extra_float_digits = 3",
            "SET application_name = 'psql'",
            "SET TIME ZONE 'UTC'",
            "BEGIN",
            "COMMIT",
        ] {
            assert!(check(sql), "{sql} should pass");
        }
        for sql in [
            "INSERT INTO requests VALUES (1)",
            "CREATE TABLE t (a INT)",
            "CREATE VIEW v AS SELECT 1",
            "COPY requests TO '/tmp/x.csv'",
            "DROP TABLE requests",
            "DELETE FROM requests",
            "UPDATE requests SET sc_status = 1",
            "SET datafusion.execution.target_partitions = 1",
            "SET statement_timeout = 0",
            "EXPLAIN INSERT INTO requests VALUES (1)",
            "TRUNCATE requests",
        ] {
            assert!(!check(sql), "{sql} should be refused");
        }
    }
}
