//! The host side of the `crosswalk:plugin@0.1.0` world, generated from `wit/`. Kept
//! private: the rest of the engine sees [`super::Plugin`] and plain JSON values.

wasmtime::component::bindgen!({
    path: "../wit/crosswalk-plugin@0.1.0",
    world: "plugin",
});
