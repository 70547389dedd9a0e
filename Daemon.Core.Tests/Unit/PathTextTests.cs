using Daemon.Files;

namespace Daemon.Core.Tests.Unit;

/// <summary>Paths shown on a terminal: whatever could hide or reorder what an administrator reads is quoted.</summary>
[TestFixture]
public sealed class PathTextTests
{
    [TestCase("/run/app.pid", "/run/app.pid")]
    [TestCase("/run/été.pid", "/run/été.pid")]
    [TestCase("/run/a\nb.pid", "$'/run/a\\nb.pid'")]
    [TestCase("/run/\u202egol.pid", "$'/run/\\u202egol.pid'")]
    [TestCase("/run/\u061cx.pid", "$'/run/\\u061cx.pid'")]
    [TestCase("/run/\u200bx.pid", "$'/run/\\u200bx.pid'")]
    [TestCase("/run/\u2028x.pid", "$'/run/\\u2028x.pid'")]
    [TestCase("/run/\ufeffx.pid", "$'/run/\\ufeffx.pid'")]
    [TestCase("/run/x\u0085.pid", "$'/run/x\\x85.pid'")]
    public void Quote_QuotesWhatATerminalWouldHideOrReorder(string path, string shown) =>
        Assert.That(PathText.Quote(path), Is.EqualTo(shown));
}
