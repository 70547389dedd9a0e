using Daemon.Interop;
using Daemon.Logging;
using Daemon.Systemd;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// sd_notify over a real datagram socket the test binds as the service manager's: what arrives,
/// what happens when nobody reads, and which NOTIFY_SOCKET values are refused.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SystemdNotifierTests
{
    private string _folder = null!;
    private string _path = null!;
    private Socket _receiver = null!;
    private StringWriter _log = null!;

    [SetUp]
    public void SetUp()
    {
        _folder = TestEnvironment.CreateTestFolder("notify");
        _path = Path.Combine(_folder, "notify.sock");
        _receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _receiver.Bind(new UnixDomainSocketEndPoint(_path));
        _receiver.ReceiveTimeout = 30_000;
        _log = new StringWriter();
    }

    [TearDown]
    public void TearDown()
    {
        _receiver.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void EachStateChange_ArrivesAsOneDatagram()
    {
        using SystemdNotifier notifier = Opened(_path);
        notifier.Ready();
        notifier.Watchdog();
        notifier.Reloading();
        notifier.Stopping();

        Assert.That(Receive(), Is.EqualTo($"READY=1\nMAINPID={Environment.ProcessId}"));
        Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"));
        Assert.That(Receive(), Does.Match(@"^RELOADING=1\nMONOTONIC_USEC=\d+$"));
        Assert.That(Receive(), Is.EqualTo("STOPPING=1"));
        Assert.That(_log.ToString(), Is.Empty);
    }

    [Test]
    public void AFailedStartup_SendsItsReason_AndItsErrno()
    {
        using SystemdNotifier notifier = Opened(_path);
        notifier.StartupFailed("cannot listen on 127.0.0.1:8007: Address already in use", 98);
        Assert.That(Receive(), Is.EqualTo("STATUS=cannot listen on 127.0.0.1:8007: Address already in use\nERRNO=98"));
    }

    [Test]
    public void AFailedStartup_WithoutAnErrno_SendsItsReasonAlone_OnOneLine()
    {
        using SystemdNotifier notifier = Opened(_path);
        notifier.StartupFailed("startup failed: first\nsecond", 0);
        Assert.That(Receive(), Is.EqualTo("STATUS=startup failed: first second"));
    }

    [Test]
    public void AFailedStartup_BeforeTheNotifierWasOpened_IsStillSent()
    {
        // Some steps fail before run opens NOTIFY_SOCKET (the log file, the user): systemd still hears why.
        using var notifier = new SystemdNotifier(_path, Log());
        notifier.StartupFailed("cannot open log file /var/log/x.log: Permission denied", 13);
        Assert.That(Receive(), Is.EqualTo("STATUS=cannot open log file /var/log/x.log: Permission denied\nERRNO=13"));
    }

    [Test]
    public void AFailedStartup_WithNobodyAtNotifySocket_IsNoError()
    {
        using var notifier = new SystemdNotifier(Path.Combine(_folder, "missing.sock"), Log());
        Assert.That(() => notifier.StartupFailed("startup failed: boom", 0), Throws.Nothing);
        Assert.That(_log.ToString(), Is.Empty);
    }

    [Test]
    public void AnExtension_IsSentInMicroseconds()
    {
        using SystemdNotifier notifier = Opened(_path);
        notifier.ExtendTimeout(TimeSpan.FromSeconds(5));
        notifier.ExtendTimeout(TimeSpan.FromMilliseconds(1500.25));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=5000000"));
        Assert.That(Receive(), Is.EqualTo("EXTEND_TIMEOUT_USEC=1500250"));
    }

    [Test]
    public void ToStartStopDaemon_ReadyIsTheLastMessage()
    {
        // start-stop-daemon --notify-await removes its socket once it has read READY=1.
        string folder = Path.Combine(_folder, ".s-s-d-notify.Xy34Zw");
        Directory.CreateDirectory(folder);
        using var startStopDaemon = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        startStopDaemon.Bind(new UnixDomainSocketEndPoint(Path.Combine(folder, "notify")));
        startStopDaemon.ReceiveTimeout = 30_000;
        using SystemdNotifier notifier = Opened(Path.Combine(folder, "notify"));

        notifier.Ready();
        notifier.Stopping();
        var buffer = new byte[256];
        Assert.That(Encoding.UTF8.GetString(buffer, 0, startStopDaemon.Receive(buffer)), Is.EqualTo($"READY=1\nMAINPID={Environment.ProcessId}"));
        Assert.That(startStopDaemon.Available, Is.Zero, "no STOPPING=1");
        Assert.That(_log.ToString(), Is.Empty, "and no warning about it");
    }

    [Test]
    public void AnAbstractName_IsReachedThroughItsAtSign()
    {
        string name = "daemon-net-test-" + Guid.NewGuid().ToString("N");
        using var abstractReceiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        abstractReceiver.Bind(new UnixDomainSocketEndPoint("\0" + name));
        abstractReceiver.ReceiveTimeout = 30_000;
        using SystemdNotifier notifier = Opened("@" + name);
        Assert.That(notifier.Send("WATCHDOG=1"), Is.True);
        var buffer = new byte[256];
        Assert.That(Encoding.UTF8.GetString(buffer, 0, abstractReceiver.Receive(buffer)), Is.EqualTo("WATCHDOG=1"));
    }

    [Test]
    public void WithoutNotifySocket_NothingIsSent_AndOpeningIsNoError()
    {
        using var notifier = new SystemdNotifier(null, Log());
        notifier.Open();
        Assert.That(notifier.Send("READY=1"), Is.False);
        Assert.That(notifier.Problem, Is.Null);
        Assert.That(_receiver.Available, Is.Zero);
    }

    [Test]
    public void AReceiverThatNeverReads_DoesNotHoldTheSenderPastThePatience_AndIsWarnedAboutOnce()
    {
        var clock = new ManualClock();
        using SystemdNotifier notifier = Opened(_path, TimeSpan.FromMilliseconds(50), clock);

        // Fill the receiver's queue, then keep sending: each call returns, none waits for ever. The
        // queue holds net.unix.max_dgram_qlen datagrams: 10 on older kernels, 512 since Linux 6.10 or
        // once a systemd booted in this network namespace (the sandboxes of the tests under a real systemd share it).
        int sends = QueueLength() + 200;
        Task<int> sending = Task.Run(() => Enumerable.Range(0, sends).Count(_ => notifier.Send("WATCHDOG=1")));
        Assert.That(sending.Wait(TimeSpan.FromSeconds(60)), Is.True, $"{sends} sends to a full receiver returned");
        Assert.That(sending.Result, Is.LessThan(sends), "some were not delivered");
        Assert.That(notifier.Dropped, Is.EqualTo(sends - sending.Result));

        string[] warnings = WarningLines();
        Assert.That(warnings, Has.Length.EqualTo(1), _log.ToString());
        Assert.That(warnings[0], Does.Contain($"sd_notify: WATCHDOG=1 not delivered to NOTIFY_SOCKET {_path}: the receiver has not read for 0.05 s; later messages are dropped at once until it reads again; the daemon serves on"));

        // A minute later, the next drop is said again, with what was dropped meanwhile.
        clock.Advance(SystemdNotifier.WarningInterval);
        Assert.That(notifier.Send("STOPPING=1"), Is.False);
        warnings = WarningLines();
        Assert.That(warnings, Has.Length.EqualTo(2), _log.ToString());
        Assert.That(warnings[1], Does.Contain($"sd_notify: STOPPING=1 not delivered").And.Contain($"; {notifier.Dropped - 1} message(s) dropped since the last warning"));

        // Once the receiver reads, messages arrive again, and the log says so.
        while (_receiver.Available > 0)
        {
            _ = Receive();
        }

        Assert.That(notifier.Send("WATCHDOG=1"), Is.True);
        Assert.That(_log.ToString(), Does.Contain($"sd_notify: NOTIFY_SOCKET {_path} takes messages again ({notifier.Dropped} dropped in all)"));
        Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"));
    }

    /// <summary>How many datagrams a Unix socket's queue holds here (net.unix.max_dgram_qlen).</summary>
    private static int QueueLength() => int.Parse(File.ReadAllText("/proc/sys/net/unix/max_dgram_qlen").Trim(), System.Globalization.CultureInfo.InvariantCulture);

    [Test]
    public void AReceiverThatWentAway_IsWarnedAbout_AndNothingThrows()
    {
        using SystemdNotifier notifier = Opened(_path);
        _receiver.Dispose();
        Assert.That(notifier.Send("WATCHDOG=1"), Is.False);
        Assert.That(() => notifier.Stopping(), Throws.Nothing);
        string[] warnings = WarningLines();
        Assert.That(warnings, Has.Length.EqualTo(1), _log.ToString());
        Assert.That(warnings[0], Does.Contain($"sd_notify: WATCHDOG=1 not delivered to NOTIFY_SOCKET {_path}: Connection refused; the daemon serves on"));
    }

    [Test]
    public void AReceiverBoundAnewAtItsPath_GetsTheNextMessage()
    {
        // Sent with sendto on every message, the notifier used to follow a new socket at the path; connected, it reconnects.
        using SystemdNotifier notifier = Opened(_path);
        _receiver.Dispose();
        File.Delete(_path);
        _receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _receiver.Bind(new UnixDomainSocketEndPoint(_path));
        _receiver.ReceiveTimeout = 30_000;

        Assert.That(notifier.Send("WATCHDOG=1"), Is.True);
        Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"));
        Assert.That(_log.ToString(), Is.Empty);
    }

    [Test]
    public void AStore_CarriesTheDescriptor_AndIsDroppedLikeAnyMessage_WhenTheReceiverIsFullOrGone()
    {
        using SystemdNotifier notifier = Opened(_path, TimeSpan.FromMilliseconds(50));
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        Assert.That(notifier.Store("stored.echo", (int)listener.Handle), Is.True);
        byte[] buffer = new byte[256];
        long n = Posix.ReceiveWithDescriptors((int)_receiver.Handle, buffer, 2, out int[] fds, out _);
        Array.ForEach(fds, Posix.Close);
        Assert.That(Encoding.UTF8.GetString(buffer, 0, (int)n), Is.EqualTo("FDSTORE=1\nFDNAME=stored.echo"));
        Assert.That(fds, Has.Length.EqualTo(1));

        // Other senders fill the receiver's queue: sendmsg's EAGAIN waits the patience, as a send's does.
        List<Socket> fillers = FillTheReceiversQueue();
        Assert.That(notifier.Store("stored.echo", (int)listener.Handle), Is.False);
        fillers.ForEach(f => f.Dispose());

        Assert.That(WarningLines().Single(), Does.Contain("sd_notify: FDSTORE=1 not delivered to NOTIFY_SOCKET").And.Contain("the receiver has not read for 0.05 s"));

        // Gone: connect's ECONNREFUSED, the reason named, nothing thrown.
        _receiver.Dispose();
        Assert.That(notifier.RemoveStored("stored.echo"), Is.False);
        Assert.That(notifier.Store("stored.echo", (int)listener.Handle), Is.False);
        Assert.That(notifier.Dropped, Is.EqualTo(3));
    }

    [Test]
    public void APathLongerThanASocketAddressHolds_IsRefusedAtOpen_WithOneLine()
    {
        // 120 bytes: the constructor used to throw ArgumentOutOfRangeException, a stack trace and exit 134 in run.
        string path = "/" + new string('x', 119);
        var notifier = new SystemdNotifier(path, Log());
        Assert.That(notifier.Problem, Is.EqualTo($"{path} is 120 bytes long, more than the 107 a Unix socket address holds"));
        Assert.That(() => notifier.Open(), Throws.InstanceOf<DaemonException>().With.Message.EqualTo(
            $"cannot use NOTIFY_SOCKET: {path} is 120 bytes long, more than the 107 a Unix socket address holds; sd_notify could not tell the service manager anything"));
        Assert.That(notifier.Send("READY=1"), Is.False);
    }

    [TestCase(107, true)]
    [TestCase(108, false)]
    public void APath_FitsUpTo107Bytes(int length, bool fits)
    {
        Assert.That(SystemdNotifier.ProblemWith("/" + new string('p', length - 1)) is null, Is.EqualTo(fits));
    }

    [TestCase(108, true)]
    [TestCase(109, false)]
    public void AnAbstractName_FitsUpTo108BytesWithItsAtSign(int length, bool fits)
    {
        // The '@' becomes the NUL that starts an abstract name, which needs no terminating NUL.
        Assert.That(SystemdNotifier.ProblemWith("@" + new string('a', length - 1)) is null, Is.EqualTo(fits));
    }

    [TestCase("relative/notify.sock")]
    [TestCase("vsock:2:1234")]
    public void AValueThatIsNoUnixSocketAddress_IsRefused(string value)
    {
        Assert.That(SystemdNotifier.ProblemWith(value), Is.EqualTo($"{value} is neither an absolute path nor an abstract name ('@...')"));
    }

    [Test]
    public void APathNobodyListensOn_IsRefusedAtOpen_WithTheReason()
    {
        string missing = Path.Combine(_folder, "missing.sock");
        var notifier = new SystemdNotifier(missing, Log());
        Assert.That(() => notifier.Open(), Throws.InstanceOf<DaemonException>().With.Message.EqualTo(
            $"cannot use NOTIFY_SOCKET {missing}: connect: No such file or directory; sd_notify could not tell the service manager anything"));
    }

    private SystemdNotifier Opened(string address, TimeSpan? patience = null, TimeProvider? clock = null)
    {
        var notifier = new SystemdNotifier(address, Log(), patience, clock);
        notifier.Open();
        return notifier;
    }

    private DaemonLog Log() => new("test", null, _log);

    /// <summary>
    /// Senders of their own until the receiver's queue is full: one sender alone may first run out
    /// of its send buffer, which a datagram's bytes occupy until they are read.
    /// </summary>
    private List<Socket> FillTheReceiversQueue()
    {
        var fillers = new List<Socket>();
        for (int i = 0; i < 1000; i++)
        {
            var filler = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
            fillers.Add(filler);
            filler.Connect(new UnixDomainSocketEndPoint(_path));
            int sent = 0;
            while (filler.Send("x"u8.ToArray(), SocketFlags.None, out SocketError error) > 0 && error == SocketError.Success)
            {
                sent++;
            }

            if (sent == 0)
            {
                return fillers;
            }
        }

        throw new AssertionException("the receiver's queue never filled");
    }

    private string[] WarningLines() => _log.ToString().Split('\n').Where(l => l.Contains("warning: ", StringComparison.Ordinal)).ToArray();

    private string Receive()
    {
        var buffer = new byte[4096];
        return Encoding.UTF8.GetString(buffer, 0, _receiver.Receive(buffer));
    }

    /// <summary>A clock that moves only when told: the warnings' rate limit without waiting a minute.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _now = 1;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _now;

        public void Advance(TimeSpan by) => _now += by.Ticks;
    }
}
