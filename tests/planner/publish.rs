//! The publish rule on plain data: what the image parameter is written
//! with, when, after what, and when never.

use crate::support::fixtures::{StateExt, TEMPLATE, backup, planned, settings, settings_with};
use ami_reconciler::model::{ParameterRead, PublishedImage, State};
use ami_reconciler::plan::{
    Change, Observation, Observed, Prerequisite, PutImageParameter, Read, plan_run,
};
use ami_reconciler::policy::ParameterPattern;
use ami_reconciler::settings::Settings;
use ami_reconciler::warning::{Severity, Warning};

const NAME: &str = "/ami-reconciler/web/image";

fn publishing() -> Settings {
    settings_with(|p| {
        p.image_parameter = Some(
            ParameterPattern::parse("IMAGE_PARAMETER", "/ami-reconciler/{template_name}/image")
                .unwrap(),
        )
    })
}

fn read_as(state: State, read: ParameterRead) -> State {
    State {
        image_parameter: Some(PublishedImage {
            name: NAME.to_owned(),
            read,
        }),
        ..state
    }
}

fn holding(value: &str) -> ParameterRead {
    ParameterRead::Found {
        value: value.to_owned(),
        data_type: "aws:ec2:image".to_owned(),
        kind: "String".to_owned(),
    }
}

fn put(plan: &ami_reconciler::Plan) -> Option<&PutImageParameter> {
    plan.changes.iter().find_map(|c| match c {
        Change::PutImageParameter(p) => Some(p),
        _ => None,
    })
}

#[test]
fn without_an_image_parameter_nothing_is_read_or_written() {
    let plan = planned(&State::fixture(), &settings());
    assert!(plan.is_converged());
    assert!(!plan.reads.contains(&Read::ImageParameters));
}

#[test]
fn the_parameter_is_read_before_anything_is_decided_about_it() {
    let plan = planned(&State::fixture(), &publishing());
    assert!(plan.reads.contains(&Read::ImageParameters));
    assert_eq!(put(&plan), None);
}

#[test]
fn a_parameter_holding_the_default_image_is_left_alone() {
    let plan = planned(&read_as(State::fixture(), holding("ami-a")), &publishing());
    assert!(plan.is_converged(), "{:?}", plan.changes);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn a_missing_parameter_is_created_without_overwrite_and_the_run_says_it_was_missing() {
    let plan = planned(
        &read_as(State::fixture(), ParameterRead::Missing),
        &publishing(),
    );
    let put = put(&plan).expect("a write");
    assert_eq!(
        (put.parameter.as_str(), put.from.as_deref(), put.to.as_str()),
        (NAME, None, "ami-a")
    );
    assert!(!put.overwrite);
    assert!(put.needs.is_empty());
    assert!(
        matches!(
            plan.warnings.as_slice(),
            [Warning::ImageParameterDiffered { value: None, .. }]
        ),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn a_new_default_is_published_once_the_default_switch_succeeded() {
    // GIVEN a newer backup and the parameter holding the current image
    let state = read_as(State::fixture().image(backup("b", 2)), holding("ami-a"));

    let plan = planned(&state, &publishing());

    // THEN the new version's image goes out after the switch, with no notice
    let put = put(&plan).expect("a write");
    assert_eq!(
        (put.from.as_deref(), put.to.as_str()),
        (Some("ami-a"), "ami-b")
    );
    assert!(put.overwrite);
    assert_eq!(put.needs, [Prerequisite::DefaultSwitched]);
    let order: Vec<&str> = plan.changes.iter().map(Change::action).collect();
    assert_eq!(
        order[..3],
        [
            "create_version",
            "set_default_version",
            "put_image_parameter"
        ]
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn a_value_that_differs_from_a_default_already_in_place_is_written_again_with_a_notice() {
    let plan = planned(
        &read_as(State::fixture(), holding("ami-old")),
        &publishing(),
    );
    assert_eq!(put(&plan).map(|p| p.to.as_str()), Some("ami-a"));
    let notice = plan
        .warnings
        .iter()
        .find(|w| matches!(w, Warning::ImageParameterDiffered { .. }))
        .expect("a notice");
    assert_eq!(notice.severity(), Severity::Notice);
}

#[test]
fn a_parameter_of_another_type_or_data_type_is_never_written() {
    for (data_type, kind) in [
        ("text", "String"),
        ("aws:ec2:image", "StringList"),
        ("text", "SecureString"),
    ] {
        let read = ParameterRead::Found {
            value: "ami-a".to_owned(),
            data_type: data_type.to_owned(),
            kind: kind.to_owned(),
        };
        let plan = planned(&read_as(State::fixture(), read), &publishing());
        assert_eq!(put(&plan), None, "{kind} {data_type}");
        assert!(
            plan.warnings
                .iter()
                .any(|w| matches!(w, Warning::ImageParameterNotImage { .. })
                    && w.severity() == Severity::NeedsAttention),
            "{kind} {data_type}: {:?}",
            plan.warnings
        );
    }
}

#[test]
fn a_parameter_that_could_not_be_read_is_not_written() {
    let plan = planned(
        &read_as(
            State::fixture(),
            ParameterRead::Unread("AccessDeniedException: no".to_owned()),
        ),
        &publishing(),
    );
    assert_eq!(put(&plan), None);
    assert!(
        plan.warnings
            .iter()
            .any(|w| matches!(w, Warning::ImageParameterNotRead { .. }))
    );
}

#[test]
fn a_default_taking_its_image_from_ssm_publishes_nothing() {
    let mut state = read_as(State::fixture(), ParameterRead::Missing);
    for version in &mut state.template.versions {
        version.image_id = Some(format!("resolve:ssm:{NAME}"));
    }
    let plan = planned(&state, &publishing());
    assert_eq!(put(&plan), None);
}

#[test]
fn a_template_name_ssm_refuses_is_a_warning_and_no_read() {
    let mut state = State::fixture();
    state.template.name = "web (old)".to_owned();
    let plan = planned(&state, &publishing());
    assert!(!plan.reads.contains(&Read::ImageParameters));
    assert!(
        plan.warnings
            .iter()
            .any(|w| matches!(w, Warning::BadImageParameter { .. }))
    );
}

#[test]
fn templates_sharing_one_parameter_publish_nothing_and_each_is_told() {
    // GIVEN two templates and a pattern without a placeholder
    let settings = settings_with(|p| {
        p.image_parameter = Some(ParameterPattern::parse("IMAGE_PARAMETER", "/shared").unwrap())
    });
    let shared = |id: &str| {
        let mut state = State::fixture();
        state.template.id = id.to_owned();
        state.image_parameter = Some(PublishedImage {
            name: "/shared".to_owned(),
            read: ParameterRead::Missing,
        });
        Observation::Ready {
            state,
            policy: settings.policy.clone(),
        }
    };
    let observed = Observed {
        templates: vec![shared(TEMPLATE), shared("lt-0other")],
        stray_groups: Vec::new(),
        discovery_tag: None,
        warnings: Vec::new(),
    };

    let run = plan_run(&observed, &settings.asg_tag);

    for plan in &run.plans {
        assert_eq!(put(plan), None);
        assert!(
            matches!(
                plan.warnings.as_slice(),
                [Warning::ImageParameterShared { .. }]
            ),
            "only the sharing is reported, nothing as written: {:?}",
            plan.warnings
        );
    }
}
