//! Opening a PostgreSQL session and bounding every round trip on it: the driver's
//! configuration from the target, the provider's own socket behind the [`AuthGuard`], the
//! TLS hook, and [`bounded`], which runs a call on the job's runtime for at most its
//! budget and marks it in flight.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::config::{ChannelBinding, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::auth_guard::{AuthGuard, GuardedTlsConnect, Watch};
use super::errors::error;
use super::socket::{self, PgSocket};
use crate::providers::error::{FailureKind, ProviderError};
use crate::providers::kind::ProviderKind;
use crate::providers::runtime::block_on_bounded;
use crate::providers::target::Target;
use crate::providers::tls::TlsMode;
use crate::secret::Secret;

/// Added to the statement timeout on the client side, so that a merely slow statement
/// ends with the server's own cancel ("canceling statement due to statement timeout").
pub const CLIENT_GRACE: Duration = Duration::from_secs(2);

/// The rustls connector for our guarded socket (its type is private to the crate).
type RustlsConnect = <MakeRustlsConnect as MakeTlsConnect<AuthGuard<PgSocket>>>::TlsConnect;

/// A call that failed or ran out of time, before it becomes a [`ProviderError`].
pub enum CallError {
    Db(tokio_postgres::Error),
    /// No socket to the server.
    Connect(std::io::Error),
    /// No answer within this long.
    TimedOut(Duration),
    /// Failed before reaching the database (the TLS settings could not be loaded).
    Setup(ProviderError),
}

impl CallError {
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            CallError::Db(e) => e.code(),
            CallError::Connect(_) | CallError::TimedOut(_) | CallError::Setup(_) => None,
        }
    }

    pub fn into_provider(self, target: &Target, action: &str) -> ProviderError {
        match self {
            CallError::Db(e) => error(target, action, &e),
            CallError::Connect(e) => ProviderError::new(
                target,
                FailureKind::Unreachable,
                action,
                format!("error connecting to server: {e}"),
            ),
            CallError::TimedOut(waited) => ProviderError::new(
                target,
                FailureKind::Timeout,
                action,
                format!("database not answering for {} s", waited.as_secs()),
            ),
            CallError::Setup(e) => e,
        }
    }
}

/// Runs `future` on `runtime` for at most `budget`, marking the call in flight.
pub fn bounded<T>(
    runtime: &Runtime,
    budget: Duration,
    future: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, CallError> {
    bounded_call(runtime, budget, async {
        future.await.map_err(CallError::Db)
    })
}

fn bounded_call<T>(
    runtime: &Runtime,
    budget: Duration,
    future: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    block_on_bounded(runtime, budget, future).unwrap_or(Err(CallError::TimedOut(budget)))
}

/// Connects and authenticates within the connect timeout; the connection's I/O task runs
/// on `runtime` whenever a later call drives it. The socket is ours, behind a guard that
/// refuses a cleartext or MD5 password request on a connection that did not verify the
/// server (see `auth_guard`).
pub fn connect_on(
    runtime: &Runtime,
    target: &Target,
    login: &str,
    password: &Secret,
) -> Result<Client, CallError> {
    let config = config_for(target, login, password);
    let tls =
        tls_connector(target, &format!("connecting as \"{login}\"")).map_err(CallError::Setup)?;
    let watch = if socket::is_unix_socket_dir(&target.host) {
        // The socket never leaves this machine: whoever listens there is the server.
        Watch::trusted()
    } else if config.get_ssl_mode() == SslMode::Disable {
        Watch::plaintext()
    } else {
        Watch::after_ssl_request()
    };
    let (client, connection) = bounded_call(runtime, target.timeouts.connect, async {
        let socket = PgSocket::open(&target.host, target.port, target.timeouts.statement)
            .await
            .map_err(CallError::Connect)?;
        config
            .connect_raw(AuthGuard::new(socket, watch), tls)
            .await
            .map_err(CallError::Db)
    })?;
    runtime.spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The TLS hook for the driver. The driver asks the server for TLS first in every mode
/// but `disable`; with `prefer` it goes on in plaintext only when the server says it has
/// no TLS, never after a failed handshake. The stream it returns is guarded unless the
/// mode verified the certificate.
fn tls_connector(
    target: &Target,
    action: &str,
) -> Result<GuardedTlsConnect<RustlsConnect>, ProviderError> {
    let config = target
        .tls
        .client_config()
        .map_err(|e| ProviderError::new(target, FailureKind::Tls, action, e.to_string()))?;
    let inner = MakeTlsConnect::<AuthGuard<PgSocket>>::make_tls_connect(
        &mut MakeRustlsConnect::new(config),
        &target.host,
    )
    .unwrap_or_else(|never| match never {});
    Ok(GuardedTlsConnect {
        inner,
        verified: target.tls.authenticates_server(),
    })
}

/// The name a login uses: Supabase's pooler wants `user.projectref`, SQL does not.
pub fn login_name(target: &Target, user: &str) -> String {
    if target.kind == ProviderKind::PostgresqlSupabase && !target.project_reference.is_empty() {
        format!("{user}.{}", target.project_reference)
    } else {
        user.to_owned()
    }
}

fn config_for(target: &Target, login: &str, password: &Secret) -> Config {
    let mut config = Config::new();
    let database = if target.database.is_empty() {
        "postgres"
    } else {
        target.database.as_str()
    };
    // libpq ignores sslmode on a Unix socket; so does the agent (no TLS there).
    let ssl_mode = match target.tls.mode {
        _ if socket::is_unix_socket_dir(&target.host) => SslMode::Disable,
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    };
    config
        .host(&target.host)
        .port(target.port)
        .user(login)
        .password(password.expose())
        .dbname(database)
        .application_name("sikkerkey-agent")
        .ssl_mode(ssl_mode)
        // SCRAM-SHA-256-PLUS whenever TLS is up and the server offers it. Not `Require`:
        // poolers (PgBouncer, Supabase's) and servers before PostgreSQL 11 have no channel
        // binding, and on an unverified channel the guard already keeps the password back.
        .channel_binding(ChannelBinding::Prefer)
        .connect_timeout(target.timeouts.connect)
        .tcp_user_timeout(target.timeouts.statement)
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(10));
    config
}
