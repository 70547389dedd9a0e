using Daemon.Interop;
using Daemon.Processes;

namespace Daemon.Core.Tests.Unit;

/// <summary>The start time status shows, read from /proc by hand.</summary>
[TestFixture]
public sealed class ProcStatTests
{
    private static readonly DateTimeOffset _now = new(2026, 11, 30, 6, 0, 0, TimeSpan.Zero);

    [Test]
    public void StartTime_IsUptimeMinusTheProcessAge()
    {
        // Started 1000 s after boot (100 ticks a second); booted 1500 s ago: 500 s old.
        string stat = "4242 (echo) S 1 4241 4241 0 -1 4194624 100 0 0 0 1 2 0 0 20 0 1 0 100000 1000 200 18446744073709551615";
        Assert.That(ProcStat.StartTime(stat, "1500.00 2900.00\n", _now, 100), Is.EqualTo(_now.AddSeconds(-500)));
    }

    [TestCase("4242 (a) b) S 1 4241 4241 0 -1 4194624 100 0 0 0 1 2 0 0 20 0 1 0 100000 1000")]
    [TestCase("4242 (tricky name ) (x) S 1 4241 4241 0 -1 4194624 100 0 0 0 1 2 0 0 20 0 1 0 100000 1000")]
    public void StartTime_CountsFieldsAfterTheLastParenthesis(string stat) =>
        Assert.That(ProcStat.StartTime(stat, "1500.00 0", _now, 100), Is.EqualTo(_now.AddSeconds(-500)));

    [TestCase("", "1500.00 0")]
    [TestCase("4242 (echo) S 1 2 3", "1500.00 0")]
    [TestCase("4242 (echo) S 1 4241 4241 0 -1 4194624 100 0 0 0 1 2 0 0 20 0 1 0 x 1000", "1500.00 0")]
    [TestCase("4242 (echo) S 1 4241 4241 0 -1 4194624 100 0 0 0 1 2 0 0 20 0 1 0 100000 1000", "")]
    public void StartTime_IsNull_ForTextThatIsNotProcs(string stat, string uptime) =>
        Assert.That(ProcStat.StartTime(stat, uptime, _now, 100), Is.Null);

    [Test]
    public void StartTime_OfThisProcess_AgreesWithTheRuntimes()
    {
        using var self = Process.GetCurrentProcess();
        DateTimeOffset? read = ProcStat.StartTime(File.ReadAllText($"/proc/{Environment.ProcessId}/stat"), File.ReadAllText("/proc/uptime"), DateTimeOffset.UtcNow, Posix.ClockTicksPerSecond());
        Assert.That(read, Is.Not.Null);
        Assert.That((read!.Value - new DateTimeOffset(self.StartTime)).Duration(), Is.LessThan(TimeSpan.FromSeconds(1)));
    }
}
