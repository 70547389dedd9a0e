using Daemon.Logging;
using Daemon.Systemd;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// The watchdog's period from WATCHDOG_USEC, who it pings for, and its pings as a datagram socket
/// the test binds as the service manager's counts them.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class WatchdogTests
{
    private const int Us = 4242;
    private string _folder = null!;
    private Socket _receiver = null!;
    private SystemdNotifier _notifier = null!;
    private StringWriter _lines = null!;
    private DaemonLog _log = null!;

    [SetUp]
    public void SetUp()
    {
        _folder = TestEnvironment.CreateTestFolder("watchdog");
        string path = Path.Combine(_folder, "notify.sock");
        _receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _receiver.Bind(new UnixDomainSocketEndPoint(path));
        _receiver.ReceiveTimeout = 30_000;
        _lines = new StringWriter();
        _log = new DaemonLog("test", null, TextWriter.Synchronized(_lines));
        _notifier = new SystemdNotifier(path, _log);
        _notifier.Open();
    }

    [TearDown]
    public void TearDown()
    {
        _notifier.Dispose();
        _receiver.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [TestCase(400_000, 200, false)]
    [TestCase(3_000, 1, false)]
    [TestCase(2_000, 1, false)]
    [TestCase(1_999, 1, true)]
    [TestCase(1_000, 1, true)]
    [TestCase(1, 1, true)]
    [TestCase(long.MaxValue, uint.MaxValue - 1L, false)]
    public void Period_IsHalfTheInterval_InWholeMilliseconds_AtLeastOne(long microseconds, long milliseconds, bool clamped)
    {
        // Whole milliseconds, rounded down: a Timer takes no less, and a period of 0 fires only once.
        Assert.That(Watchdog.PeriodFor(microseconds, out bool wasClamped), Is.EqualTo(TimeSpan.FromMilliseconds(milliseconds)));
        Assert.That(wasClamped, Is.EqualTo(clamped));
    }

    [TestCase(null, null)]
    [TestCase("0", null)]
    [TestCase("soon", null)]
    [TestCase("-5", null)]
    [TestCase("200000", "1")]
    [TestCase("200000", "not a pid")]
    public void Start_PingsForNobody_WhenTheVariablesAreNotForThisProcess(string? usec, string? pid)
    {
        using Watchdog? watchdog = Watchdog.Start(usec, pid, Us, _notifier, () => true, _log);
        Assert.That(watchdog, Is.Null);
        Assert.That(_lines.ToString(), Is.Empty);
    }

    [Test]
    public void Start_PingsAtHalfTheInterval_ForThisPid_AndSaysHowOften()
    {
        using Watchdog? watchdog = Watchdog.Start("20000", "4242", Us, _notifier, () => true, _log);
        Assert.That(watchdog, Is.Not.Null);
        Assert.That(watchdog!.Period, Is.EqualTo(TimeSpan.FromMilliseconds(10)));
        Assert.That(_lines.ToString(), Does.Contain("watchdog: WATCHDOG=1 every 10 ms while healthy").And.Not.Contain("warning"));
        for (int i = 0; i < 5; i++)
        {
            Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"));
        }
    }

    [Test]
    public void Start_BelowWhatATimerKeeps_IsClamped_SaidSo_AndKeepsPinging()
    {
        // 1000 us asked for a ping every 0.5 ms: the timer got a period of 0 and fired once.
        using Watchdog? watchdog = Watchdog.Start("1000", null, Us, _notifier, () => true, _log);
        Assert.That(watchdog!.Period, Is.EqualTo(TimeSpan.FromMilliseconds(1)));
        Assert.That(_lines.ToString(), Does.Contain("warning: watchdog: WATCHDOG_USEC=1000 asks for a ping every 0.5 ms, less than a timer can keep; WATCHDOG=1 every 1 ms while healthy instead"));
        for (int i = 0; i < 5; i++)
        {
            Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"), $"ping {i + 1}");
        }
    }

    [Test]
    public void AFailingHealthCheck_StopsThePings_AndIsSaidOnce()
    {
        int checks = 0;
        using var failed = new ManualResetEventSlim();
        using Watchdog? watchdog = Watchdog.Start("20000", null, Us, _notifier, () =>
        {
            if (Interlocked.Increment(ref checks) <= 2)
            {
                return true;
            }

            failed.Set();
            return false;
        }, _log);

        Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"));
        Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"));
        Assert.That(failed.Wait(TimeSpan.FromSeconds(30)), Is.True, "the third check ran");
        Assert.That(ExampleDaemon.Eventually(() => _lines.ToString().Contains("no longer pinging", StringComparison.Ordinal), TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(Volatile.Read(ref checks), Is.EqualTo(3), "no check after the failed one");
        Assert.That(ExampleDaemon.Count(_lines.ToString(), "watchdog: the health check failed; no longer pinging"), Is.EqualTo(1));
        Assert.That(_receiver.Available, Is.Zero, "no ping after the failed check");
    }

    private string Receive()
    {
        var buffer = new byte[256];
        return Encoding.UTF8.GetString(buffer, 0, _receiver.Receive(buffer));
    }
}
