//! A typed session: one struct under one key, behind a small extractor, so handlers never
//! touch string keys.
//!
//! `cargo run -p examples --bin axum-typed`, then open <http://127.0.0.1:3003/?item=tea>.

use axum::extract::{FromRequestParts, Query};
use axum::http::{request::Parts, StatusCode};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use session_axum::{MemoryStore, Session, SessionLayer};

#[derive(Default, Serialize, Deserialize)]
struct Cart {
    items: Vec<String>,
}

/// The cart of this session, saved back with `save`.
struct CartSession {
    session: Session,
    cart: Cart,
}

impl CartSession {
    const KEY: &'static str = "cart";

    fn save(&self) {
        self.session
            .insert(Self::KEY, &self.cart)
            .expect("a Cart serializes");
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CartSession {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        let cart = session.get(Self::KEY).ok().flatten().unwrap_or_default();
        Ok(CartSession { session, cart })
    }
}

#[derive(Deserialize)]
struct Add {
    item: Option<String>,
}

async fn cart(mut cs: CartSession, Query(add): Query<Add>) -> String {
    if let Some(item) = add.item {
        cs.cart.items.push(item);
        cs.save();
    }
    format!("cart: {}", cs.cart.items.join(", "))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(cart))
        .layer(SessionLayer::new(MemoryStore::default()).with_secure(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3003").await?;
    println!("http://{}/?item=tea", listener.local_addr()?);
    axum::serve(listener, app).await
}
