using Daemon.Logging;
using Daemon.Systemd;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// EXTEND_TIMEOUT_USEC while the startup hook runs: its cadence on a clock the test moves, what
/// each message asks for, where it ends (the ready timeout, a stop, the hook's return) and who
/// gets none, as a datagram socket the test binds as the service manager's receives them.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class StartupExtensionTests
{
    private string _folder = null!;
    private string _path = null!;
    private Socket _receiver = null!;
    private StringWriter _lines = null!;
    private DaemonLog _log = null!;
    private SystemdNotifier _notifier = null!;
    private ManualTime _time = null!;

    [SetUp]
    public void SetUp()
    {
        _folder = TestEnvironment.CreateTestFolder("extend");
        _path = Path.Combine(_folder, "notify.sock");
        _receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _receiver.Bind(new UnixDomainSocketEndPoint(_path));
        _receiver.ReceiveTimeout = 30_000;
        _lines = new StringWriter();
        _log = new DaemonLog("test", null, _lines);
        _notifier = new SystemdNotifier(_path, _log);
        _notifier.Open();
        _time = new ManualTime();
    }

    [TearDown]
    public void TearDown()
    {
        _notifier.Dispose();
        _receiver.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void AsksForFiveSecondsEveryTwo_FromTwoSecondsAfterTheHookBegan()
    {
        using StartupExtension? extension = StartupExtension.Start(_notifier, _log, TimeSpan.FromSeconds(30), _time.GetTimestamp(), CancellationToken.None, _time);
        Assert.That(extension, Is.Not.Null);

        // A quick hook sends nothing (nor would systemd need it to).
        _time.Advance(TimeSpan.FromSeconds(1.9));
        Assert.That(_receiver.Available, Is.Zero, "nothing before the first period");
        Assert.That(_lines.ToString(), Is.Empty);

        _time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=5000000"));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=5000000"));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=5000000"));
        Assert.That(_receiver.Available, Is.Zero, "one message per period");

        Assert.That(ExampleDaemon.Count(_lines.ToString(), "startup: taking more than 2 s; EXTEND_TIMEOUT_USEC of 5 s every 2 s, until the ready timeout (30 s)"), Is.EqualTo(1), _lines.ToString());
    }

    [Test]
    public void TheExtensions_ReachTheReadyTimeout_AndNoFurther_ThenSaySo()
    {
        using StartupExtension? extension = StartupExtension.Start(_notifier, _log, TimeSpan.FromSeconds(5), _time.GetTimestamp(), CancellationToken.None, _time);

        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=3000000"), "3 s left of the ready timeout");
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=1000000"), "1 s left");
        _time.Advance(TimeSpan.FromSeconds(2));
        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.That(_receiver.Available, Is.Zero, "a stuck hook gets no more time than the ready timeout");
        Assert.That(_time.Timer!.IsDisposed, Is.True, "nothing wakes up any more");
        Assert.That(ExampleDaemon.Count(_lines.ToString(), "warning: startup: still in the startup hook after the ready timeout (5 s); no more EXTEND_TIMEOUT_USEC, so the service manager's start timeout applies"), Is.EqualTo(1), _lines.ToString());
    }

    [Test]
    public void ALaterHook_GetsWhatIsLeftOfTheReadyTimeout()
    {
        // The activation hook runs after the startup hook: the daemon began to start 25 s ago.
        long started = _time.GetTimestamp();
        _time.Advance(TimeSpan.FromSeconds(25));
        using StartupExtension? extension = StartupExtension.Start(_notifier, _log, TimeSpan.FromSeconds(30), started, CancellationToken.None, _time);

        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=3000000"), "3 s left of the 30");
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=1000000"));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(_receiver.Available, Is.Zero);
    }

    [Test]
    public void OnceTheHookReturned_NothingMoreIsSent()
    {
        StartupExtension? extension = StartupExtension.Start(_notifier, _log, TimeSpan.FromSeconds(30), _time.GetTimestamp(), CancellationToken.None, _time);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=5000000"));

        extension!.Dispose();
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(_receiver.Available, Is.Zero, "READY=1 comes next, not an extension");
        Assert.That(_time.Timer!.IsDisposed, Is.True);
    }

    [Test]
    public void AStopRequest_EndsTheExtensions_WithoutAWarning()
    {
        // STOPPING=1 went out: an extension now would stretch the unit's stop timeout instead.
        using var stopping = new CancellationTokenSource();
        using StartupExtension? extension = StartupExtension.Start(_notifier, _log, TimeSpan.FromSeconds(30), _time.GetTimestamp(), stopping.Token, _time);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=5000000"));

        stopping.Cancel();
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(_receiver.Available, Is.Zero);
        Assert.That(_time.Timer!.IsDisposed, Is.True);
        Assert.That(_lines.ToString(), Does.Not.Contain("warning:"));
    }

    [Test]
    public void StartStopDaemon_GetsNone()
    {
        // dpkg reads the value as milliseconds: 5 s would keep it waiting 83 minutes.
        string folder = Path.Combine(_folder, ".s-s-d-notify.Ab12Cd");
        Directory.CreateDirectory(folder);
        using var receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        receiver.Bind(new UnixDomainSocketEndPoint(Path.Combine(folder, "notify")));
        using var startStopDaemon = new SystemdNotifier(Path.Combine(folder, "notify"), _log);
        startStopDaemon.Open();

        Assert.That(startStopDaemon.IsStartStopDaemons, Is.True);
        Assert.That(_notifier.IsStartStopDaemons, Is.False);
        Assert.That(StartupExtension.Start(startStopDaemon, _log, TimeSpan.FromSeconds(30), _time.GetTimestamp(), CancellationToken.None, _time), Is.Null);
        Assert.That(_time.Timer, Is.Null, "no timer");
    }

    [Test]
    public void WithoutAServiceManager_NothingRuns()
    {
        using var unset = new SystemdNotifier(null, _log);
        unset.Open();
        Assert.That(StartupExtension.Start(unset, _log, TimeSpan.FromSeconds(30), _time.GetTimestamp(), CancellationToken.None, _time), Is.Null);
        Assert.That(_time.Timer, Is.Null, "no timer");
    }

    private string Receive()
    {
        var buffer = new byte[256];
        return Encoding.UTF8.GetString(buffer, 0, _receiver.Receive(buffer));
    }

    /// <summary>A clock that moves only when told, firing its one timer on the test's thread as it comes due.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private long _now = 1;

        public ManualTimer? Timer { get; private set; }

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _now;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            Timer = new ManualTimer(callback, state, _now + dueTime.Ticks, period.Ticks);

        public void Advance(TimeSpan by)
        {
            long end = _now + by.Ticks;
            while (Timer is { IsDisposed: false } timer && timer.Due <= end)
            {
                _now = timer.Due;
                timer.Due += timer.Period;
                timer.Fire();
            }

            _now = end;
        }
    }

    private sealed class ManualTimer(TimerCallback callback, object? state, long due, long period) : ITimer
    {
        public long Due { get; set; } = due;

        public long Period { get; } = period;

        public bool IsDisposed { get; private set; }

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period) => throw new NotSupportedException("not used by StartupExtension");

        public void Dispose() => IsDisposed = true;

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
