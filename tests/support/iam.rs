//! IAM in moto: users with inline policies, and enforcement switched on.

use serde_json::Value;

use super::REGION;
use super::moto::{Key, Moto, http};

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
        http(
            self.moto,
            &format!(
                "POST / HTTP/1.1\r\n\
                 Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=0\r\n\
                 Content-Type: application/x-www-form-urlencoded"
            ),
            &form,
        )
    }

    /// Creates an IAM user with one inline policy and an access key; returns
    /// (access key id, secret access key).
    pub fn user_with_policy(&self, name: &str, policy: &Value) -> Key {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]);
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "reconciler"),
            ("PolicyDocument", &policy.to_string()),
        ]);
        let xml = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]);
        Key {
            id: xml_text(&xml, "AccessKeyId"),
            secret: xml_text(&xml, "SecretAccessKey"),
        }
    }

    /// From now on moto authenticates and authorises every call (seed first:
    /// the default `testing` key is unknown to IAM and is refused).
    pub fn enforce_iam(&self) {
        http(
            self.moto,
            "POST /moto-api/reset-auth HTTP/1.1\r\nContent-Type: text/plain",
            "0",
        );
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
