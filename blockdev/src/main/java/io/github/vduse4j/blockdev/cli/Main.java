package io.github.vduse4j.blockdev.cli;

/** Entry point of the {@code vduse4j} command line (placeholder until the export lands). */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.out.println("vduse4j: nothing to run yet");
    }
}
