//! The Lambda Runtime API (`/2018-06-01/runtime/...`) for one function process: the binary
//! polls `invocation/next`, answers on `invocation/{id}/response` or `/error`, and reports a
//! failed start on `init/error`, as it does on Lambda. One invocation runs at a time per
//! process, as in one execution environment.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot};

use crate::{Handler, now_ms};

/// Region, account and credentials every function process gets unless its settings say
/// otherwise (moto accepts any credentials).
const DEFAULT_ENV: [(&str, &str); 5] = [
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "standin"),
    ("AWS_SECRET_ACCESS_KEY", "standin"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
];

struct Pending {
    id: String,
    event: Vec<u8>,
    deadline_ms: i64,
}

#[derive(Default)]
struct Runtime {
    queue: Mutex<VecDeque<Pending>>,
    ready: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Result<Value, String>>>>,
    init_error: Mutex<Option<String>>,
    logs: Mutex<Vec<String>>,
}

/// A function binary running against its own Runtime API.
pub struct Function {
    name: String,
    runtime: Arc<Runtime>,
    child: Mutex<Child>,
    counter: std::sync::atomic::AtomicU64,
    /// How long an invocation may run (the deadline the function is told).
    pub timeout: Duration,
}

impl Function {
    /// Starts `binary` as the function `name` with `env` (on top of a cleared environment:
    /// nothing of the test's own leaks in) and its Runtime API.
    pub async fn start<K: AsRef<str>, V: AsRef<str>>(
        binary: impl AsRef<Path>,
        name: &str,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> std::io::Result<Function> {
        let runtime = Arc::new(Runtime::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(runtime.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let binary = binary.as_ref();
        if !binary.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no function binary at {}", binary.display()),
            ));
        }
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(DEFAULT_ENV)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "standin")
            .env("_HANDLER", "bootstrap");
        for (k, v) in env {
            command.env(k.as_ref(), v.as_ref());
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let runtime = runtime.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    runtime.logs.lock().expect("lock").push(line);
                }
            });
        }
        Ok(Function {
            name: name.to_owned(),
            runtime,
            child: Mutex::new(child),
            counter: Default::default(),
            timeout: Duration::from_secs(30),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Invokes the function with `event`: its answer, or its error (`errorType: errorMessage`),
    /// or why it gave neither (it exited, it failed to start, the deadline passed).
    pub async fn invoke(&self, event: &Value) -> Result<Value, String> {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{n:08}", self.name);
        let (tx, rx) = oneshot::channel();
        self.runtime
            .waiting
            .lock()
            .expect("lock")
            .insert(id.clone(), tx);
        self.runtime.queue.lock().expect("lock").push_back(Pending {
            id: id.clone(),
            event: serde_json::to_vec(event).expect("an event serializes"),
            deadline_ms: now_ms() + self.timeout.as_millis() as i64,
        });
        self.runtime.ready.notify_one();
        let grace = self.timeout + Duration::from_secs(2);
        let answer = tokio::select! {
            answer = rx => answer.map_err(|_| "the runtime dropped the invocation".to_owned()),
            exit = self.exited() => Err(format!("{} exited: {exit}", self.name)),
            _ = tokio::time::sleep(grace) => Err(format!("{} did not answer within {grace:?}", self.name)),
        };
        self.runtime.waiting.lock().expect("lock").remove(&id);
        if let Some(init) = self.runtime.init_error.lock().expect("lock").clone() {
            return Err(format!("{} failed to start: {init}", self.name));
        }
        answer?
    }

    /// Resolves when the process has exited.
    async fn exited(&self) -> String {
        loop {
            if let Ok(Some(status)) = self.child.lock().expect("lock").try_wait() {
                return status.to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every line the process wrote so far (its JSON logs and EMF documents).
    pub fn logs(&self) -> Vec<String> {
        self.runtime.logs.lock().expect("lock").clone()
    }

    /// The function as a gateway route or authorizer.
    pub fn handler(self: &Arc<Self>) -> Handler {
        let function = self.clone();
        crate::handler(move |event| {
            let function = function.clone();
            async move { function.invoke(&event).await }
        })
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} logs ---", self.name);
            for line in self.logs() {
                eprintln!("{line}");
            }
        }
    }
}

async fn next(State(runtime): State<Arc<Runtime>>) -> Response {
    loop {
        let pending = runtime.queue.lock().expect("lock").pop_front();
        if let Some(p) = pending {
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: String| {
                headers.insert(name, HeaderValue::from_str(&value).expect("a header value"));
            };
            set("lambda-runtime-aws-request-id", p.id.clone());
            set("lambda-runtime-deadline-ms", p.deadline_ms.to_string());
            set(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:standin".into(),
            );
            set(
                "lambda-runtime-trace-id",
                format!("Root=1-00000000-{:024x};Sampled=0", p.deadline_ms),
            );
            set("content-type", "application/json".into());
            return (StatusCode::OK, headers, p.event).into_response();
        }
        runtime.ready.notified().await;
    }
}

fn settle(runtime: &Runtime, id: &str, answer: Result<Value, String>) -> StatusCode {
    match runtime.waiting.lock().expect("lock").remove(id) {
        Some(tx) => {
            let _ = tx.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(runtime): State<Arc<Runtime>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let answer = if body.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))
    };
    settle(&runtime, &id, answer)
}

fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("?"),
            v["errorMessage"].as_str().unwrap_or("?")
        ),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

async fn error(
    State(runtime): State<Arc<Runtime>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    settle(&runtime, &id, Err(error_text(&body)))
}

async fn init_error(State(runtime): State<Arc<Runtime>>, body: Bytes) -> StatusCode {
    *runtime.init_error.lock().expect("lock") = Some(error_text(&body));
    StatusCode::ACCEPTED
}
