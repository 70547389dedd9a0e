using Daemon.PidFiles;

namespace Daemon.Core.Tests.Unit;

[TestFixture]
public sealed class PidFileContentTests
{
    [TestCase("1234\n", 1234)]
    [TestCase("1234", 1234)]
    [TestCase("  77 \r\n", 77)]
    [TestCase("4194304\n", 4194304)]
    public void Parse_ReturnsThePid_ForOneDecimalNumber(string content, int expected)
    {
        Assert.That(PidFileContent.Parse(Encoding.ASCII.GetBytes(content)), Is.EqualTo(expected));
    }

    [TestCase("", TestName = "Parse_ReturnsNull_WhenEmpty")]
    [TestCase("\n", TestName = "Parse_ReturnsNull_WhenOnlyANewline")]
    [TestCase("abc\n", TestName = "Parse_ReturnsNull_WhenNonNumeric")]
    [TestCase("-1\n", TestName = "Parse_ReturnsNull_WhenNegative")]
    [TestCase("0\n", TestName = "Parse_ReturnsNull_WhenZero")]
    [TestCase("+12\n", TestName = "Parse_ReturnsNull_WhenSigned")]
    [TestCase("4194305\n", TestName = "Parse_ReturnsNull_WhenAbovePidMax")]
    [TestCase("99999999999999999999\n", TestName = "Parse_ReturnsNull_WhenHuge")]
    [TestCase("12 34\n", TestName = "Parse_ReturnsNull_WhenSeveralNumbers")]
    [TestCase("12\n34\n", TestName = "Parse_ReturnsNull_WhenSeveralLines")]
    [TestCase("123abc\n", TestName = "Parse_ReturnsNull_WhenTrailingJunk")]
    [TestCase("0x10\n", TestName = "Parse_ReturnsNull_WhenHex")]
    [TestCase("１２\n", TestName = "Parse_ReturnsNull_WhenNonAsciiDigits")]
    public void Parse_ReturnsNull_ForAnythingButOnePid(string content)
    {
        Assert.That(PidFileContent.Parse(Encoding.UTF8.GetBytes(content)), Is.Null);
    }

    [Test]
    public void Parse_ReturnsNull_ForALongFile()
    {
        byte[] content = Encoding.ASCII.GetBytes(new string(' ', 100) + "12\n");
        Assert.That(PidFileContent.Parse(content), Is.Null);
    }

    [Test]
    public void Format_WritesThePidAndANewline()
    {
        Assert.That(Encoding.ASCII.GetString(PidFileContent.Format(31337)), Is.EqualTo("31337\n"));
    }

    [Test]
    public void Quote_KeepsControlCharactersOutOfMessages()
    {
        Assert.That(PidFileContent.Quote(Encoding.ASCII.GetBytes("1\u001b[2J")), Is.EqualTo("\"1?[2J\""));
    }

    [Test]
    public void Parse_NeverThrows_AndOnlyReturnsValidPids_ForRandomBytes()
    {
        var random = new Random(20261124);
        var buffer = new byte[80];
        for (int i = 0; i < 20_000; i++)
        {
            int length = random.Next(0, buffer.Length);
            random.NextBytes(buffer.AsSpan(0, length));
            if (i % 3 == 0)
            {
                // Bias towards digits and blanks, where the interesting cases are.
                const string Alphabet = "0123456789 \n-+";
                for (int j = 0; j < length; j++)
                {
                    buffer[j] = (byte)Alphabet[buffer[j] % Alphabet.Length];
                }
            }

            int? pid = PidFileContent.Parse(buffer.AsSpan(0, length));
            Assert.That(pid is null or (>= 1 and <= PidFileContent.MaxPid), Is.True, $"case {i}");
        }
    }
}
