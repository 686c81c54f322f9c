package dev.silhouette.quant;

import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.List;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

public class RegionPolicyTest {

    @Test
    public void readsTheCompactAndTheOriginalSpelling() {
        RegionPolicy compact = RegionPolicy.parse("2:50,3:30,4:20");
        RegionPolicy original = RegionPolicy.parse("2bit 50%, 3bit 30%, 4bit 20%");
        assertEquals(original, compact);
        assertEquals(compact.regions(), List.of(new RegionPolicy.Region(2, 50), new RegionPolicy.Region(3, 30), new RegionPolicy.Region(4, 20)));
        assertEquals(compact.toString(), "2:50,3:30,4:20");
        assertEquals(RegionPolicy.parse(compact.toString()), compact);
    }

    @Test
    public void averageBitsAndSharesFollowTheText() {
        RegionPolicy p = RegionPolicy.parse(" 2:50 , 3:30 ,4:20 ");
        assertEquals(p.averageBits(), 2.7, 1e-12);
        assertEquals(p.percents(), new int[] {50, 30, 20});
        RegionPolicy single = RegionPolicy.parse("8:100");
        assertEquals(single.percents(), new int[] {100});
        assertEquals(single.averageBits(), 8.0);
        RegionPolicy many = RegionPolicy.parse("1:10,2:10,3:10,4:10,5:10,6:10,7:10,8:10,8:20");
        assertEquals(many.regions().size(), 9);
        assertEquals(many.bits(8), 8);
    }

    @DataProvider
    public Object[][] badPolicies() {
        return new Object[][] {
                {"", "empty"},
                {"2:50,3:30,4:30", "shares sum to 110%, not 100%"},
                {"2:50,3:30", "shares sum to 80%, not 100%"},
                {"0:50,3:50", "region 1 bits 0 outside the supported 1..8"},
                {"2:50,9:50", "region 2 bits 9 outside the supported 1..8"},
                {"2:0,4:100", "region 1 has 0% of the pixels"},
                {"4:20,3:30,2:50", "bits go down from 4 to 3"},
                {"2:50;3:50", "cannot read '2:50;3:50'"},
                {"2:50,three:50", "cannot read 'three:50'"},
                {"2:-50,4:150", "cannot read '2:-50'"},
                {"2:99999999999,4:1", "number 99999999999 is out of range"},
        };
    }

    @Test(dataProvider = "badPolicies")
    public void refusesWithTheInputAndTheProblem(String text, String expected) {
        String message = expectThrows(IllegalArgumentException.class, () -> RegionPolicy.parse(text)).getMessage();
        assertTrue(message.contains(expected), "'" + text + "' gave: " + message);
        if (!text.isEmpty()) assertTrue(message.contains("region policy '"), message);
    }
}
