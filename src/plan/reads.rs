//! The reads the planner asks for. Observe reads what every run needs, plans,
//! and performs what the plans ask for, then plans again, until no plan asks
//! for a read it has not made: the reads a run makes follow from the rules.
//! A converged run makes only the instance read its managed groups' running
//! instances need.

/// A read a plan needs before it can decide for sure. Until it is made, the
/// plan takes the safe side: no deletion, no refresh, no tag warning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Read {
    /// The groups without the managed tag, which may pin versions a
    /// deletion would take (once for the whole run).
    OtherGroups,
    /// The image of each in-service instance of the managed groups (once
    /// for the whole run, every template's together).
    InstanceImages,
    /// The images groups' versions and running instances use that no other
    /// read returned (once for the whole run, every template's together).
    ReferencedImages,
    /// The SSM parameters the templates' images are published to (once for
    /// the whole run, ten names per call).
    ImageParameters,
    /// The instance refreshes of this rolling group, which is behind.
    Refreshes(String),
    /// The template's own tags, before a write to it: a template the
    /// deployed policies would refuse to write is named in a warning. Asked
    /// for last, once every other read is made, since it never changes a
    /// change.
    TemplateTags,
}

impl Read {
    /// True for the reads made once for every template together.
    pub fn is_account_wide(&self) -> bool {
        matches!(
            self,
            Read::OtherGroups
                | Read::InstanceImages
                | Read::ReferencedImages
                | Read::ImageParameters
        )
    }
}
