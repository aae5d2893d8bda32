package io.github.vduse4j.blockdev.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code --rbd POOL/IMAGE[@SNAP]} parsing and the checks made before librbd is touched. */
class RbdSpecTest {
    @Test
    void parsesPoolImageAndSnapshot() {
        RbdBackend.Spec s = RbdBackend.Spec.parse("rbd/disk1");
        assertEquals("rbd", s.pool());
        assertEquals("disk1", s.image());
        assertNull(s.snapshot());
        RbdBackend.Spec snap = RbdBackend.Spec.parse("pool-a/img.2@before-upgrade");
        assertEquals("pool-a", snap.pool());
        assertEquals("img.2", snap.image());
        assertEquals("before-upgrade", snap.snapshot());
        assertEquals("pool-a/img.2@before-upgrade", snap.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "disk", "/disk", "rbd/", "rbd/a/b", "rbd/@snap", "rbd/img@", "@snap/img", "rb@d/img"})
    void refusesMalformedSpecsWithOneLine(String bad) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RbdBackend.Spec.parse(bad));
        assertTrue(e.getMessage().contains("POOL/IMAGE"), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"));
    }

    @Test
    void aWritableSnapshotIsRefusedBeforeConnecting() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RbdBackend.open(
                RbdBackend.Spec.parse("rbd/img@s1"), null, null, false, false, 1, 1));
        assertEquals("snapshot rbd/img@s1 is read-only: add --readonly", e.getMessage());
    }

    @Test
    void aMissingCephConfIsRefusedBeforeConnecting() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RbdBackend.open(
                RbdBackend.Spec.parse("rbd/img"), Path.of("/nonexistent/ceph.conf"), null, false, false, 1, 1));
        assertTrue(e.getMessage().startsWith("ceph.conf not found or not readable: /nonexistent/ceph.conf"));
    }
}
