//! Entries that an osiris host must refuse: `osiris_ocp_test_badabi` (a module whose layout differs from the
//! SDK's `OcpModule`) and `osiris_ocp_test_abi2` (a module claiming plugin ABI 2).

use abi_stable::library::{CheckTypeLayout, LibHeader, RootModule, RootModuleResult};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::RStr;
use abi_stable::{StableAbi, declare_root_module_statics};

/// Not the SDK's layout: `abi_version` is a `u64` and there are no entry points.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = OcpModuleRef)))]
pub struct OcpModule {
    pub abi_version: u64,
    #[sabi(last_prefix_field)]
    pub plugin_name: RStr<'static>,
}

impl RootModule for OcpModuleRef {
    declare_root_module_statics! {OcpModuleRef}
    const BASE_NAME: &'static str = "osiris_ocp";
    const NAME: &'static str = "osiris plugin module";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

/// Same layout, but announced as plugin ABI 2.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = Abi2ModuleRef)))]
pub struct Abi2Module {
    #[sabi(last_prefix_field)]
    pub abi_version: u64,
}

impl RootModule for Abi2ModuleRef {
    declare_root_module_statics! {Abi2ModuleRef}
    const BASE_NAME: &'static str = "osiris_ocp";
    const NAME: &'static str = "osiris plugin module";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("2.0.0");
}

fn bad() -> OcpModuleRef {
    OcpModule {
        abi_version: 1,
        plugin_name: RStr::from_str("badabi"),
    }
    .leak_into_prefix()
}

fn abi2() -> Abi2ModuleRef {
    Abi2Module { abi_version: 2 }.leak_into_prefix()
}

extern "C" fn bad_constructor() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(bad)
}

extern "C" fn abi2_constructor() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(abi2)
}

#[unsafe(no_mangle)]
pub static osiris_ocp_test_badabi: LibHeader =
    unsafe { LibHeader::from_constructor::<OcpModuleRef>(bad_constructor, CheckTypeLayout::Yes) };

#[unsafe(no_mangle)]
pub static osiris_ocp_test_abi2: LibHeader =
    unsafe { LibHeader::from_constructor::<Abi2ModuleRef>(abi2_constructor, CheckTypeLayout::Yes) };

include!("../../marker.rs");
