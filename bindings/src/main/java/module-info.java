/**
 * Linux bindings: the jextract-generated uapi layouts ({@code io.github.vduse4j.bindings.uapi}) and the hand-written
 * libc layer; the librados/librbd functions ({@code io.github.vduse4j.bindings.rbd}). The only module that calls {@code Linker} or {@code reinterpret}, so the only one that needs native
 * access: {@code --enable-native-access=io.github.vduse4j.bindings}.
 */
module io.github.vduse4j.bindings {
    exports io.github.vduse4j.bindings;
    exports io.github.vduse4j.bindings.uapi;
    exports io.github.vduse4j.bindings.rbd;
}
