//! A moto server and its proxy per test, and clients that talk to them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ami_reconciler::Clients;
use ami_reconciler::clients::config_loader;
use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_sdk_ec2::config::Credentials;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::account::Account;
use super::{REGION, python};

/// An access key: `testing` (moto's default account) or an IAM user's.
#[derive(Debug, Clone)]
pub struct Key {
    /// Access key id.
    pub id: String,
    /// Secret access key.
    pub secret: String,
}

impl Key {
    /// The key every test uses while IAM is not enforced.
    pub fn testing() -> Key {
        Key {
            id: "testing".to_owned(),
            secret: "testing".to_owned(),
        }
    }

    fn credentials(&self) -> Credentials {
        Credentials::new(&self.id, &self.secret, None, None, "tests")
    }
}

/// One HTTP/1.1 request on a fresh connection to 127.0.0.1:`port`; returns
/// the body after checking for a 200 status.
pub(super) fn http(port: u16, request_head: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the test server");
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(
        stream,
        "{request_head}\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{request_head}: {head}\n{body}"
    );
    body.to_owned()
}

/// One moto server and its proxy, private to one test; stopped on drop.
pub struct Moto {
    child: Child,
    /// Port of the proxy: what the code under test talks to.
    pub proxy: u16,
    /// Port of moto itself: what seeding talks to (not counted, never faulted).
    pub moto: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One AWS call as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `ec2`, `autoscaling`, `ssm`, `events`.
    pub service: String,
    /// `DescribeImages`, ...
    pub action: String,
    /// Not a Describe/Get/List call.
    pub mutating: bool,
    /// HTTP status returned.
    pub status: u16,
    /// The injected fault, if any.
    pub fault: Option<String>,
}

impl Moto {
    /// Starts moto and the proxy on free loopback ports.
    pub fn start() -> Moto {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/harness.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/support/harness.py");
        let stdout = child.stdout.take().expect("harness stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the harness ready line");
        let ports: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("harness said {line:?}: {e}"));
        Moto {
            proxy: ports["proxy"].as_u64().expect("proxy port") as u16,
            moto: ports["moto"].as_u64().expect("moto port") as u16,
            child,
        }
    }

    /// The endpoint the code under test uses.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy)
    }

    /// A control request to the proxy (see harness.py); returns its JSON answer.
    pub fn control(&self, method: &str, path: &str, body: &Value) -> Value {
        let body = http(
            self.proxy,
            &format!("{method} {path} HTTP/1.1\r\nContent-Type: application/json"),
            &body.to_string(),
        );
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// Moves the group's active refresh (the emulation's control endpoint)
    /// to `status`, replacing instances as a real refresh would.
    pub fn move_refresh(&self, group: &str, status: &str) -> Value {
        let answer = self.control(
            "POST",
            &format!("/_harness/refreshes/{group}"),
            &json!({"status": status, "replace_instances": true}),
        );
        assert_eq!(answer["ok"], true, "{answer}");
        answer
    }

    /// The group's refresh fails; Auto Scaling rolls it back
    /// (`AutoRollback`) and the rollback succeeds: the group is back on the
    /// version it was on. Returns the refresh's id.
    pub fn roll_back(&self, group: &str) -> String {
        let failed = self.move_refresh(group, "Failed");
        assert_eq!(failed["status"], "RollbackInProgress", "{failed}");
        self.move_refresh(group, "RollbackSuccessful");
        failed["instance_refresh_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every call the proxy forwarded or faulted since the last reset.
    pub fn calls(&self) -> Vec<Call> {
        let doc = self.control("GET", "/_harness/calls", &json!({}));
        doc["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| Call {
                service: c["service"].as_str().unwrap_or_default().to_owned(),
                action: c["action"].as_str().unwrap_or_default().to_owned(),
                mutating: c["mutating"].as_bool().unwrap_or_default(),
                status: c["status"].as_u64().unwrap_or_default() as u16,
                fault: c["fault"].as_str().map(str::to_owned),
            })
            .collect()
    }

    /// Actions of the mutating calls since the last reset.
    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.mutating)
            .map(|c| c.action)
            .collect()
    }

    /// The most mutating calls that were in flight at once.
    pub fn peak_in_flight_mutating(&self) -> u64 {
        self.control("GET", "/_harness/calls", &json!({}))["peak_in_flight_mutating"]
            .as_u64()
            .unwrap_or_default()
    }

    /// Forgets recorded calls and fault rules.
    pub fn reset(&self) {
        self.control("POST", "/_harness/reset", &json!({}));
    }

    /// Replaces the fault rules (see harness.py).
    pub fn faults(&self, rules: Value) {
        self.control("POST", "/_harness/faults", &json!({ "rules": rules }));
    }

    /// Every entry of every `PutEvents` call since the last reset, in order,
    /// exactly as sent (`Detail` is the JSON text). A call that was retried
    /// or faulted counts each attempt: what EventBridge would have been
    /// offered, not what it kept.
    pub fn sent_events(&self) -> Vec<Value> {
        self.put_events_entries().into_iter().flatten().collect()
    }

    /// The number of entries of each `PutEvents` call since the last reset,
    /// in order: how the events were batched (EventBridge takes at most 10
    /// per call), which the flattened [`Moto::sent_events`] hides.
    pub fn put_events_calls(&self) -> Vec<usize> {
        self.put_events_entries().iter().map(Vec::len).collect()
    }

    /// The entries of each recorded `PutEvents` call.
    fn put_events_entries(&self) -> Vec<Vec<Value>> {
        let doc = self.control("GET", "/_harness/events", &json!({}));
        doc["calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| c["entries"].as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets what the EC2 API cannot seed: an image's state and creation date.
    pub fn set_image(&self, id: &str, state: Option<&str>, created: Option<DateTime<Utc>>) {
        let mut body = json!({});
        if let Some(s) = state {
            body["state"] = json!(s);
        }
        if let Some(c) = created {
            body["creation_date"] = json!(c.format("%Y-%m-%dT%H:%M:%S.000Z").to_string());
        }
        self.control("POST", &format!("/_harness/images/{id}"), &body);
    }

    /// Clients of the code under test: through the proxy, with the
    /// reconciler's own retry and timeout configuration.
    pub async fn clients(&self) -> Clients {
        self.clients_with(|loader| loader).await
    }

    /// Clients like [`Moto::clients`], with the reconciler's configuration
    /// adjusted (shorter timeouts, quicker retries) before it is loaded.
    pub async fn clients_with(&self, adjust: impl FnOnce(ConfigLoader) -> ConfigLoader) -> Clients {
        let loader = Self::signed(config_loader(), self.proxy, &Key::testing());
        Clients::new(&adjust(loader).load().await)
    }

    /// Clients of the code under test signed with this key (through the proxy).
    pub async fn clients_as(&self, key: &Key) -> Clients {
        Clients::new(&Self::signed(config_loader(), self.proxy, key).load().await)
    }

    /// An account to seed, talking to moto directly.
    pub async fn account(&self) -> Account<'_> {
        self.account_as(&Key::testing()).await
    }

    /// An account to seed or inspect with this key, direct to moto (not
    /// counted as calls of the code under test, never faulted).
    pub async fn account_as(&self, key: &Key) -> Account<'_> {
        let loader = aws_config::defaults(BehaviorVersion::latest());
        Account::new(self, &Self::signed(loader, self.moto, key).load().await)
    }

    fn signed(loader: ConfigLoader, port: u16, key: &Key) -> ConfigLoader {
        loader
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .region(Region::new(REGION))
            .credentials_provider(key.credentials())
    }

    /// Environment for the binaries under test: through the proxy, nothing
    /// from the developer's own AWS configuration.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }
}
