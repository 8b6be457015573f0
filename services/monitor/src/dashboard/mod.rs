//! The HTML dashboard: plain server-rendered pages (maud, which escapes every interpolated value)
//! with forms for actions — flows and their health, open alerts, dead letters and their replay,
//! schema drift, identity conflicts, and what monitor knows of a golden record. It reuses the admin
//! API's tokens: logging in swaps a token for a random session id in an HttpOnly, SameSite=Strict
//! cookie, and every read or replay goes through the admin service's own methods, so a replay is
//! audited first exactly as with the CLI.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use switchyard_chassis::config::FlowConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::{CancellationToken, Error};

use crate::admin::{AdminService, Auth, Role};
// What every page uses, here for the page modules (`super::…`).
use auth::as_role;
use layout::{error_page, page, utc};

/// What the pages need.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub admin: AdminService,
    pub auth: Auth,
    pub pool: Pool,
    pub flows: Vec<FlowConfig>,
    pub bucket: Duration,
    pub trailing_buckets: u32,
    sessions: Arc<Mutex<HashMap<String, (Role, Instant)>>>,
}

impl Dashboard {
    pub fn new(
        admin: AdminService,
        auth: Auth,
        flows: Vec<FlowConfig>,
        bucket: Duration,
        trailing_buckets: u32,
    ) -> Self {
        Self {
            pool: admin.pool.clone(),
            admin,
            auth,
            flows,
            bucket,
            trailing_buckets,
            sessions: Arc::default(),
        }
    }

    /// Serves the dashboard on `listener` until shutdown.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let app = Router::new()
            .route("/", get(flows::flows_page))
            .route("/login", get(auth::login_page).post(auth::login))
            .route("/logout", axum::routing::post(auth::logout))
            .route("/alerts", get(alerts::alerts_page))
            .route("/dlq", get(dead_letters::dlq_page))
            .route("/dlq/{seq}", get(dead_letters::letter_page))
            .route(
                "/dlq/{seq}/replay",
                get(dead_letters::confirm_page).post(dead_letters::replay),
            )
            .route("/drift", get(alerts::drift_page))
            .route("/conflicts", get(review::conflicts_page))
            .route(
                "/conflicts/{id}/merge",
                get(review::confirm_merge).post(review::merge),
            )
            .route(
                "/conflicts/{id}/keep-apart",
                get(review::confirm_keep_apart).post(review::keep_apart),
            )
            .route("/golden", get(golden::golden_lookup))
            .route("/golden/{object}/{id}", get(golden::golden_page))
            // Browsers ask for /favicon.ico whatever the page declares; answer both so the
            // console stays clean.
            .route("/favicon.svg", get(assets::favicon))
            .route("/favicon.ico", get(assets::favicon))
            .with_state(self);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|e| Error::Other(format!("dashboard: {e}")))
    }
}

/// Session required: the page's role, or a redirect to the login form.
macro_rules! session {
    ($dash:expr, $headers:expr) => {
        match $dash.session(&$headers) {
            Some(role) => role,
            None => return Redirect::to("/login").into_response(),
        }
    };
}

mod alerts;
mod assets;
mod auth;
mod dead_letters;
mod flows;
mod golden;
mod layout;
mod review;

/// Where the dashboard listens, bound at build time so its address is known before `run`.
pub(crate) async fn bind(
    addr: Option<SocketAddr>,
) -> Result<Option<tokio::net::TcpListener>, Error> {
    match addr {
        Some(addr) => Ok(Some(switchyard_chassis::runtime::bind(addr).await?)),
        None => Ok(None),
    }
}
