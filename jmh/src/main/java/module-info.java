/**
 * The JMH benchmarks, a named module on the module path like every other (scripts/bench/jmh runs them): the project's
 * modules keep their descriptors, native access goes to the bindings module only, and the two internal packages the
 * benchmarks drive are exported to this module alone, on the command line ({@code --add-exports}): blockdev's device
 * model ({@code blockdev.virtio}) and ring's test kit ({@code ring.testkit}, patched into the ring module from its
 * test-jar with {@code --patch-module}, as surefire does for tests). Open: JMH instantiates its generated classes
 * reflectively.
 */
@SuppressWarnings("requires-automatic") // jmh-core 1.37 has no module descriptor or Automatic-Module-Name
open module io.github.vduse4j.jmh {
    requires io.github.vduse4j.blockdev;
    requires io.github.vduse4j.bindings;
    requires jmh.core;
    requires org.jctools.core; // CompletionHandoffBenchmark compares against a JCTools queue
}
