using Daemon.Logging;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// The daemon's lines in its two forms: timestamped with name and pid for a file or a terminal,
/// and marked with their sd-daemon(3) priority alone for the systemd journal.
/// </summary>
[TestFixture]
public sealed class DaemonLogTests
{
    [TestCase(LogSeverity.Information, "ready", "<6>ready\n")]
    [TestCase(LogSeverity.Warning, "reload failed: no such file", "<4>warning: reload failed: no such file\n")]
    [TestCase(LogSeverity.Error, "cannot listen on 127.0.0.1:8007: Address already in use", "<3>error: cannot listen on 127.0.0.1:8007: Address already in use\n")]
    public void ForTheJournal_ALineIsItsPriorityAndMessage_WithoutTimeNameOrPid(LogSeverity severity, string message, string expected)
    {
        Assert.That(DaemonLog.FormatForJournal(severity, message), Is.EqualTo(expected));
    }

    [Test]
    public void ForTheJournal_EveryLineOfAStackTrace_KeepsTheEntrysPriority()
    {
        // The journal reads a stream line by line: a line without the prefix would be information.
        string entry = "startup failed: boom\nSystem.InvalidOperationException: boom\r\n   at Daemon.Example.EchoDaemon.OnStartupAsync()\n";
        Assert.That(DaemonLog.FormatForJournal(LogSeverity.Error, entry), Is.EqualTo(
            "<3>error: startup failed: boom\n<3>System.InvalidOperationException: boom\n<3>   at Daemon.Example.EchoDaemon.OnStartupAsync()\n"));
    }

    [Test]
    public void UnderTheJournal_LinesCarryTheirPriority_AndNoTimestamp()
    {
        var lines = new StringWriter();
        var log = new DaemonLog("test", null, lines, journal: true);
        log.Line("starting");
        log.Line(LogSeverity.Warning, "reload failed");

        Assert.That(lines.ToString(), Is.EqualTo("<6>starting\n<4>warning: reload failed\n"));
        Assert.That(log.StartedOnJournal, Is.True);
    }

    [Test]
    public void ElsewhereThanTheJournal_LinesKeepTheirTimestampNameAndPid()
    {
        var lines = new StringWriter();
        var log = new DaemonLog("test", null, lines, journal: false);
        log.Line(LogSeverity.Warning, "reload failed");

        Assert.That(lines.ToString(), Does.Match(@$"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}[+-]\d\d:\d\d test\[{Environment.ProcessId}\]: warning: reload failed\n$"));
        Assert.That(log.StartedOnJournal, Is.False);
    }

    [Test]
    public void ToAWriterOfItsOwn_TheLogIsNeverTheJournal()
    {
        // Tests hand the log a writer: whatever this process's descriptor 2 is, that writer is not it.
        Assert.That(new DaemonLog("test", null, new StringWriter()).StartedOnJournal, Is.False);
    }

    [Test]
    public void AnObserverThatThrows_IsNotedAtWarningPriority_UnderTheJournal()
    {
        var lines = new StringWriter();
        var log = new DaemonLog("test", (_, _) => throw new InvalidOperationException("down"), lines, journal: true);
        log.Line("ready");

        Assert.That(lines.ToString(), Is.EqualTo("<6>ready\n<4>warning: log observer failed: down\n"));
    }
}
