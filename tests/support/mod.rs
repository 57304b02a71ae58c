//! Test support: a moto server per test, behind a counting, fault-injecting
//! proxy (both started by `tests/support/harness.py`), and builders that seed
//! a realistic account through the real AWS SDK.
//!
//! moto's gaps are filled in one place, `tests/support/moto_gaps.py`; see
//! docs/testing.md for what is emulated.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ami_reconciler::clients::config_loader;
use ami_reconciler::settings::{RawSettings, Settings};
use ami_reconciler::{Clients, Report};
use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_sdk_autoscaling::types::{
    InstancesDistribution, LaunchTemplate as AsgLaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification, MixedInstancesPolicy, Tag as AsgTag,
};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType, Tag, TagSpecification};
use chrono::{DateTime, Duration as Days, TimeZone, Utc};
use serde_json::{Value, json};

/// The region every test account lives in.
pub const REGION: &str = "us-east-1";
/// The managed tag, as the default `ASG_TAG`.
pub const MANAGED: (&str, &str) = ("ami-reconciler:managed", "true");

/// The Python interpreter that has moto: `AMI_RECONCILER_PYTHON`, else the
/// repository's `.venv` (created by `scripts/test.sh`).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("AMI_RECONCILER_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with moto: run scripts/test.sh (it creates .venv), or set AMI_RECONCILER_PYTHON"
    );
    venv
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
    /// `ec2`, `autoscaling`, `ssm`.
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

    fn control(&self, method: &str, path: &str, body: &Value) -> Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.proxy)).expect("connect to proxy");
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let body = body.to_string();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send control request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read control response");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "{path}: {head}"
        );
        serde_json::from_str(body).unwrap_or(Value::Null)
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
        let loader = config_loader()
            .endpoint_url(self.endpoint())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"));
        Clients::new(&adjust(loader).load().await)
    }

    /// An account to seed, talking to moto directly.
    pub async fn account(&self) -> Account<'_> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{}", self.moto))
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await;
        Account {
            moto: self,
            ec2: aws_sdk_ec2::Client::new(&config),
            asg: aws_sdk_autoscaling::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
        }
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

/// Day `n` of the test calendar, 03:00 UTC (DLM's usual hour).
pub fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 3, 0, 0).unwrap() + Days::days(n)
}

/// Settings for a template id, everything else default.
pub fn settings_for(template_id: &str) -> Settings {
    RawSettings {
        launch_template_id: Some(template_id.to_owned()),
        ..RawSettings::default()
    }
    .validate()
    .unwrap()
}

/// Seeds one moto account through the EC2, Auto Scaling and SSM APIs.
pub struct Account<'a> {
    moto: &'a Moto,
    /// EC2 client (direct to moto).
    pub ec2: aws_sdk_ec2::Client,
    /// Auto Scaling client (direct to moto).
    pub asg: aws_sdk_autoscaling::Client,
    /// SSM client (direct to moto).
    pub ssm: aws_sdk_ssm::Client,
}

impl Account<'_> {
    /// Registers an image with this description, created on day `n`.
    pub async fn image(&self, name: &str, description: &str, n: i64) -> String {
        let id = self
            .ec2
            .register_image()
            .name(name)
            .description(description)
            .send()
            .await
            .unwrap()
            .image_id
            .unwrap();
        self.moto.set_image(&id, None, Some(day(n)));
        id
    }

    /// Registers a DLM-like backup (`EC2_BACKUP` in the description) from day `n`.
    pub async fn backup(&self, n: i64) -> String {
        self.image(
            &format!("web-backup-{n}"),
            &format!("Created for policy: policy-0abc schedule: daily EC2_BACKUP day {n}"),
            n,
        )
        .await
    }

    /// Tags an image `ami-reconciler:skip=true`.
    pub async fn skip(&self, image: &str) {
        self.ec2
            .create_tags()
            .resources(image)
            .tags(
                Tag::builder()
                    .key("ami-reconciler:skip")
                    .value("true")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Creates a launch template whose version 1 uses `image`; returns its id.
    pub async fn template(&self, name: &str, image: &str) -> String {
        self.ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id(image)
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .user_data("IyEvYmluL2Jhc2gKZWNobyBoZWxsbw==")
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .tags(Tag::builder().key("app").value("web").build())
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .launch_template
            .unwrap()
            .launch_template_id
            .unwrap()
    }

    /// Adds a version from `$Latest` with this image; returns its number.
    pub async fn version(&self, template: &str, image: &str) -> i64 {
        self.ec2
            .create_launch_template_version()
            .launch_template_id(template)
            .source_version("$Latest")
            .launch_template_data(RequestLaunchTemplateData::builder().image_id(image).build())
            .send()
            .await
            .unwrap()
            .launch_template_version
            .unwrap()
            .version_number
            .unwrap()
    }

    /// Makes `version` the default.
    pub async fn set_default(&self, template: &str, version: i64) {
        self.ec2
            .modify_launch_template()
            .launch_template_id(template)
            .default_version(version.to_string())
            .send()
            .await
            .unwrap();
    }

    /// Stores the template id in an SSM parameter.
    pub async fn parameter(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }

    fn spec(template: &str, version: &str) -> LaunchTemplateSpecification {
        LaunchTemplateSpecification::builder()
            .launch_template_id(template)
            .version(version)
            .build()
    }

    fn tags(name: &str, managed: bool) -> Vec<AsgTag> {
        let mut tags = vec![
            AsgTag::builder()
                .key("app")
                .value("web")
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .propagate_at_launch(true)
                .build(),
        ];
        if managed {
            tags.push(
                AsgTag::builder()
                    .key(MANAGED.0)
                    .value(MANAGED.1)
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .propagate_at_launch(false)
                    .build(),
            );
        }
        tags
    }

    /// Creates a group on `version` of `template`, tagged managed or not.
    pub async fn group(&self, name: &str, template: &str, version: &str, managed: bool) {
        self.new_group(name, managed)
            .launch_template(Self::spec(template, version))
            .send()
            .await
            .unwrap();
    }

    /// A group request with what every test group shares: no instances, one
    /// zone, the `app` tag and, if `managed`, the managed tag.
    fn new_group(
        &self,
        name: &str,
        managed: bool,
    ) -> aws_sdk_autoscaling::operation::create_auto_scaling_group::builders::CreateAutoScalingGroupFluentBuilder{
        self.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(0)
            .max_size(4)
            .desired_capacity(0)
            .availability_zones(format!("{REGION}a"))
            .set_tags(Some(Self::tags(name, managed)))
    }

    /// Creates a mixed instances group: top-level `version`, and an override
    /// per entry of `overrides` (instance type, template version).
    pub async fn mixed_group(
        &self,
        name: &str,
        template: &str,
        version: &str,
        overrides: &[(&str, Option<&str>)],
        managed: bool,
    ) {
        let overrides = overrides
            .iter()
            .map(|(instance_type, v)| {
                let mut o = LaunchTemplateOverrides::builder()
                    .instance_type(*instance_type)
                    .weighted_capacity("1");
                if let Some(v) = v {
                    o = o.launch_template_specification(Self::spec(template, v));
                }
                o.build()
            })
            .collect();
        self.new_group(name, managed)
            .mixed_instances_policy(
                MixedInstancesPolicy::builder()
                    .launch_template(
                        AsgLaunchTemplate::builder()
                            .launch_template_specification(Self::spec(template, version))
                            .set_overrides(Some(overrides))
                            .build(),
                    )
                    .instances_distribution(
                        InstancesDistribution::builder()
                            .on_demand_base_capacity(1)
                            .on_demand_percentage_above_base_capacity(25)
                            .spot_allocation_strategy("price-capacity-optimized")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// The group as AWS describes it now.
    pub async fn describe_group(&self, name: &str) -> aws_sdk_autoscaling::types::AutoScalingGroup {
        self.asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .unwrap()
            .auto_scaling_groups
            .unwrap_or_default()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("group {name} exists"))
    }

    /// The launch template version a plain group uses.
    pub async fn group_version(&self, name: &str) -> String {
        let g = self.describe_group(name).await;
        match g.launch_template() {
            Some(spec) => spec.version().unwrap_or_default().to_owned(),
            None => g
                .mixed_instances_policy()
                .and_then(|p| p.launch_template())
                .and_then(|lt| lt.launch_template_specification())
                .and_then(|s| s.version())
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// The template's version numbers (ascending) and its default.
    pub async fn versions(&self, template: &str) -> (Vec<i64>, i64) {
        let mut numbers = Vec::new();
        let mut default = 0;
        let mut pages = self
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(template)
            .max_results(200)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for v in page.unwrap().launch_template_versions() {
                numbers.push(v.version_number().unwrap());
                if v.default_version() == Some(true) {
                    default = v.version_number().unwrap();
                }
            }
        }
        numbers.sort_unstable();
        (numbers, default)
    }

    /// The full data of one version.
    pub async fn version_data(
        &self,
        template: &str,
        version: &str,
    ) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
        self.ec2
            .describe_launch_template_versions()
            .launch_template_id(template)
            .versions(version)
            .send()
            .await
            .unwrap()
            .launch_template_versions()[0]
            .launch_template_data()
            .cloned()
            .unwrap()
    }
}

/// A drifted account: the golden image at version 1 (the default), three
/// daily backups, versions 2..=6 made by hand with older images, a managed
/// group pinned to 1, an untagged group pinned to 2, a managed mixed
/// instances group on `$Default` whose override pins 3.
///
/// One run converges it to versions 2, 3, 5, 6 and 7 (the newest backup,
/// the default), both managed groups on `$Latest`.
pub struct Drifted {
    /// The template id.
    pub template: String,
    /// The backups, oldest first.
    pub backups: Vec<String>,
}

/// Seeds [`Drifted`].
pub async fn drifted(moto: &Moto) -> Drifted {
    let account = moto.account().await;
    let golden = account.image("golden", "golden image, hand made", 0).await;
    let mut backups = Vec::new();
    for n in 1..=3 {
        backups.push(account.backup(n).await);
    }
    let template = account.template("web", &golden).await;
    for _ in 2..=6 {
        account.version(&template, &golden).await;
    }
    account.group("web", &template, "1", true).await;
    account.group("batch", &template, "2", false).await;
    account
        .mixed_group(
            "spot",
            &template,
            "$Default",
            &[("t3.micro", None), ("t3a.micro", Some("3"))],
            true,
        )
        .await;
    Drifted { template, backups }
}

/// Actions of a report's applied changes.
pub fn applied_actions(report: &Report) -> Vec<&'static str> {
    report
        .applied
        .iter()
        .map(|a| ami_reconciler::apply::action(&a.change))
        .collect()
}

/// IAM in moto: users with inline policies, and enforcement switched on.
///
/// moto checks only the action of each call against the caller's policies:
/// resources and conditions are ignored, and every denial is HTTP 403 with
/// an XML `AccessDenied` body, whatever the service.
impl Moto {
    /// Calls moto's IAM query API directly (unsigned: only valid while
    /// enforcement is off, i.e. before [`Moto::enforce_iam`]); returns the XML.
    pub fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut form = String::from("Version=2010-05-08");
        for (key, value) in params {
            form.push_str(&format!("&{key}={}", percent_encode(value)));
        }
        let mut stream = TcpStream::connect(("127.0.0.1", self.moto)).expect("connect to moto");
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        )
        .expect("send IAM request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read IAM response");
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "{params:?}: {response}"
        );
        response
    }

    /// Creates an IAM user with one inline policy and an access key; returns
    /// (access key id, secret access key).
    pub fn user_with_policy(&self, name: &str, policy: &Value) -> (String, String) {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]);
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "reconciler"),
            ("PolicyDocument", &policy.to_string()),
        ]);
        let xml = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]);
        (
            xml_text(&xml, "AccessKeyId"),
            xml_text(&xml, "SecretAccessKey"),
        )
    }

    /// From now on moto authenticates and authorises every call (seed first:
    /// the default `testing` key is unknown to IAM and is refused).
    pub fn enforce_iam(&self) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.moto)).expect("connect to moto");
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
        write!(
            stream,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0"
        )
        .expect("send reset-auth");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read reset-auth response");
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "{response}"
        );
    }

    /// Clients of the code under test signed with this access key (through the proxy).
    pub async fn clients_as(&self, key: &(String, String)) -> Clients {
        let config = config_loader()
            .endpoint_url(self.endpoint())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(&key.0, &key.1, None, None, "tests"))
            .load()
            .await;
        Clients::new(&config)
    }

    /// An account to inspect with this access key (direct to moto, so the
    /// checks are not counted as calls of the code under test).
    pub async fn account_as(&self, key: &(String, String)) -> Account<'_> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{}", self.moto))
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(&key.0, &key.1, None, None, "tests"))
            .load()
            .await;
        Account {
            moto: self,
            ec2: aws_sdk_ec2::Client::new(&config),
            asg: aws_sdk_autoscaling::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
        }
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..]
        .find(&format!("</{tag}>"))
        .expect("closing tag")
        + start;
    xml[start..end].to_owned()
}
