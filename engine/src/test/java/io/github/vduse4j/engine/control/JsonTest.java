package io.github.vduse4j.engine.control;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class JsonTest {
    @Test
    void parsesWhatItWritesAndTheSpecsValues() {
        Object v = Json.parse(" {\"command\":\"resize\",\"size\":1073741824,\"f\":-1.5e3,\"ok\":true,\"n\":null,"
                + "\"a\":[1,\"x\\u00e9\\n\\\"\"],\"o\":{}} ");
        Map<?, ?> m = (Map<?, ?>) v;
        assertEquals("resize", m.get("command"));
        assertEquals(1073741824L, m.get("size"));
        assertEquals(-1500.0, m.get("f"));
        assertEquals(true, m.get("ok"));
        assertTrue(m.containsKey("n") && m.get("n") == null);
        assertEquals(List.of(1L, "xé\n\""), m.get("a"));
        assertEquals(v, Json.parse(Json.write(v)));
        assertEquals("{\"s\":\"a\\\"b\\\\c\\u0001\"}", Json.write(Map.of("s", "a\"b\\c\u0001")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "{", "{\"a\":}", "{\"a\":1,}", "[1,]", "{\"a\":1}x", "01", "1.", "-", "\"\\x\"",
        "\"abc", "tru", "{\"a\":1,\"a\":2}", "{a:1}", "\"\u0001\"", "99999999999999999999",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]"})
    void refusesAnythingElse(String bad) {
        assertThrows(IllegalArgumentException.class, () -> Json.parse(bad));
    }
}
