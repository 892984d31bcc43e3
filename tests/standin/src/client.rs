//! A WebSocket client as a browser or an agent uses the API: connect with a token, send,
//! receive JSON messages.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a connection was not opened.
#[derive(Debug)]
pub enum Refused {
    /// The handshake was answered with this HTTP status (401, 403, 429 …).
    Status(u16),
    Other(String),
}

pub struct Client {
    socket: Socket,
}

impl Client {
    /// Connects to `url` (the gateway's [`websocket_url`](crate::Gateway::websocket_url)),
    /// with `?token=<token>` when there is one.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Client, Refused> {
        let url = match token {
            Some(t) => format!("{url}?token={t}"),
            None => url.to_owned(),
        };
        match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => Ok(Client { socket }),
            Err(tungstenite::Error::Http(response)) => {
                Err(Refused::Status(response.status().as_u16()))
            }
            Err(e) => Err(Refused::Other(e.to_string())),
        }
    }

    /// Connects to `url` with `Authorization: Bearer <token>` (an agent, not a browser).
    pub async fn connect_with_bearer(url: &str, token: &str) -> Result<Client, Refused> {
        use tungstenite::client::IntoClientRequest;
        let mut request = url
            .into_client_request()
            .map_err(|e| Refused::Other(e.to_string()))?;
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().map_err(
                |e: tungstenite::http::header::InvalidHeaderValue| Refused::Other(e.to_string()),
            )?,
        );
        Self::open(request).await
    }

    async fn open(request: tungstenite::handshake::client::Request) -> Result<Client, Refused> {
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Client { socket }),
            Err(tungstenite::Error::Http(response)) => {
                Err(Refused::Status(response.status().as_u16()))
            }
            Err(e) => Err(Refused::Other(e.to_string())),
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("the message is sent");
    }

    /// The next text message as JSON, or `None` when none came within `wait` or the
    /// connection closed.
    pub async fn next_json(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            match message.ok()? {
                Message::Text(text) => return serde_json::from_str(text.as_str()).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Whether the server closed the connection within `wait`.
    pub async fn closed(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Closes the connection as a client does (a close frame, 1000).
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        // Wait for the server's close answer.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.socket.next().await {}
        })
        .await;
    }
}
