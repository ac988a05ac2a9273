//! Which account a manifest means.

use super::*;
use crate::ids::EspKind;

#[test]
fn the_account_is_named_or_chosen_by_template_prefix_or_the_only_one() {
    let acct = |a: &str, p: &str| -> Arc<dyn Esp> {
        Arc::new(FakeEsp {
            account: Some(AccountId::parse(a).unwrap()),
            prefix: Some(p.into()),
            ..Default::default()
        })
    };
    let two = EspRegistry::new(vec![acct("eu", "eu_"), acct("us", "us_")]);
    let us = AccountId::parse("us").unwrap();
    let pick = |a: Option<&AccountId>, name: Option<&str>| {
        two.choose(EspKind::Emarsys, a, name)
            .map(|e| e.account().to_string())
    };
    assert_eq!(pick(Some(&us), None).unwrap(), "us");
    assert_eq!(pick(None, Some("eu_spring")).unwrap(), "eu");
    let e = pick(None, Some("spring")).unwrap_err();
    assert!(e.to_string().contains("2 emarsys accounts"), "{e}");
    let e = pick(Some(&AccountId::parse("asia").unwrap()), None).unwrap_err();
    assert!(e.to_string().contains("no emarsys account named"), "{e}");
    let one = EspRegistry::new(vec![acct("eu", "eu_")]);
    assert_eq!(
        one.choose(EspKind::Emarsys, None, None)
            .unwrap()
            .account()
            .as_str(),
        "eu"
    );
    let e = one.choose(EspKind::Bronto, None, None).err().unwrap();
    assert!(e.to_string().contains("no bronto account"), "{e}");
}
