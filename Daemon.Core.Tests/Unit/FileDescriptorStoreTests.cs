using Daemon.Handover;
using Daemon.Interop;
using Daemon.Logging;
using Daemon.Systemd;
using Syscall = Mono.Unix.Native.Syscall;
using FcntlCommand = Mono.Unix.Native.FcntlCommand;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// What goes to systemd's fd store (<see cref="FileDescriptorStore"/>) over a real datagram socket
/// the test binds as the service manager's, with the descriptors attached; how the names are made,
/// and what the listeners systemd keeps mean for their files and for a stop.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class FileDescriptorStoreTests
{
    private string _folder = null!;
    private Socket _systemd = null!;
    private SystemdNotifier _notifier = null!;
    private ListenerSet _listeners = null!;
    private StringWriter _log = null!;

    [SetUp]
    public void SetUp()
    {
        _folder = TestEnvironment.CreateTestFolder("fdstore");
        string path = Path.Combine(_folder, "notify.sock");
        _systemd = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _systemd.Bind(new UnixDomainSocketEndPoint(path));
        _log = new StringWriter();
        _notifier = new SystemdNotifier(path, Log());
        _notifier.Open();
        _listeners = new ListenerSet();
    }

    [TearDown]
    public void TearDown()
    {
        _listeners.CloseAll();
        _notifier.Dispose();
        _systemd.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [TestCase("echo", "stored.echo")]
    [TestCase("127.0.0.1:8080", "stored.127.0.0.1_8080")]
    [TestCase("[::1]:443", "stored.[__1]_443")]
    [TestCase("café\tbar", "stored.caf__bar")]
    [TestCase("/run/x/status.sock", "stored./run/x/status.sock")]
    public void FdName_IsThePrefixAndTheName_WithWhatSystemdRefusesReplaced(string listener, string fdName)
    {
        Assert.That(FileDescriptorStore.FdName(listener), Is.EqualTo(fdName));
        Assert.That(FileDescriptorStore.ListenerName(fdName), Is.EqualTo(fdName[FileDescriptorStore.Prefix.Length..]));
    }

    [Test]
    public void FdName_IsCutAtTheLongestNameSystemdTakes()
    {
        Assert.That(FileDescriptorStore.FdName(new string('x', 300)), Has.Length.EqualTo(255));
    }

    [TestCase("echo")]
    [TestCase("stored.")]
    [TestCase("unknown")]
    public void ListenerName_IsNull_ForWhatThisDaemonDidNotStore(string fdName)
    {
        Assert.That(FileDescriptorStore.ListenerName(fdName), Is.Null);
    }

    [TestCase(null, null)]
    [TestCase("", null)]
    [TestCase("x", null)]
    [TestCase("0", 0)]
    [TestCase("4", 4)]
    public void Capacity_IsWhatFdstoreSays_OrUnknown(string? variable, int? capacity)
    {
        Assert.That(FileDescriptorStore.Capacity(variable), Is.EqualTo(capacity));
    }

    [Test]
    public void Keep_StoresEachListenerItBound_ByName_WithItsDescriptor_AndSaysHowToKeepThem()
    {
        Socket echo = _listeners.Listen("echo", new IPEndPoint(IPAddress.Loopback, 0), 16, Log());

        FileDescriptorStore.Keep(_listeners, _notifier, Log(), capacityVariable: null);

        (string message, int[] fds) = ReceiveWithDescriptors();
        Assert.That(message, Is.EqualTo("FDSTORE=1\nFDNAME=stored.echo"));
        Assert.That(fds, Has.Length.EqualTo(1));
        using (var copy = new Socket(new SafeSocketHandle(fds[0], ownsHandle: true)))
        {
            Assert.That(copy.LocalEndPoint, Is.EqualTo(echo.LocalEndPoint), "the listener itself, not a connection");
        }

        Assert.That(_systemd.Available, Is.Zero, "one message per listener");
        Assert.That(_log.ToString(), Does.Contain("fd store: systemd keeps listener(s) 'echo' across a restart if the unit sets FileDescriptorStoreMax= (at least 1)"));
        Assert.That(_log.ToString(), Does.Not.Contain("warning"));
    }

    [Test]
    public void Keep_StoresNothing_WhenFdstoreSaysTheStoreHoldsNone()
    {
        _ = _listeners.Listen("echo", new IPEndPoint(IPAddress.Loopback, 0), 16, Log());

        FileDescriptorStore.Keep(_listeners, _notifier, Log(), capacityVariable: "0");

        Assert.That(_systemd.Available, Is.Zero, "systemd would only log that it cannot store them");
        Assert.That(_log.ToString(), Does.Not.Contain("fd store"));
    }

    [Test]
    public void Keep_WarnsOnce_WhenTheStoreHoldsFewerThanTheListeners()
    {
        _ = _listeners.Listen("a", new IPEndPoint(IPAddress.Loopback, 0), 16, Log());
        _ = _listeners.Listen("b", new IPEndPoint(IPAddress.Loopback, 0), 16, Log());

        FileDescriptorStore.Keep(_listeners, _notifier, Log(), capacityVariable: "1");

        CloseAll(ReceiveWithDescriptors().Fds);
        CloseAll(ReceiveWithDescriptors().Fds);
        Assert.That(_log.ToString(), Does.Contain("warning: fd store: FileDescriptorStoreMax=1 is less than the 2 listeners; systemd closes those beyond it, and a restart refuses their connections"));
    }

    [Test]
    public void Keep_StoresNoListenerSystemdHoldsAlready_AndRemovesFromTheStoreThoseNothingClaimed()
    {
        Socket kept = Passed(InheritedFrom.FileDescriptorStore, "echo");
        _ = Passed(InheritedFrom.FileDescriptorStore, "old");
        Socket unit = Passed(InheritedFrom.SocketUnit, "web");
        Assert.That(_listeners.Listen("echo", kept.LocalEndPoint!, 16, Log()), Is.SameAs(kept));
        Assert.That(_listeners.Listen("web", new IPEndPoint(IPAddress.Loopback, 1), 16, Log()), Is.SameAs(unit), "a socket unit's counts by name wherever it is");
        _listeners.CloseUnclaimed(Log());

        FileDescriptorStore.Keep(_listeners, _notifier, Log(), capacityVariable: "4");

        (string message, int[] fds) = ReceiveWithDescriptors();
        Assert.That(message, Is.EqualTo("FDSTOREREMOVE=1\nFDNAME=stored.old"));
        Assert.That(fds, Is.Empty);
        Assert.That(_systemd.Available, Is.Zero, "nothing to store: systemd holds 'echo' and 'web'");
        Assert.That(_log.ToString(), Does.Contain("warning: inherited listener 'old' on 127.0.0.1:").And.Contain(" was not claimed; closing it and removing it from systemd's fd store"));
    }

    [Test]
    public void AListenerPassedBackFromTheStore_CountsOnlyWhereTheConfigurationListens()
    {
        // A restart with another --port: the stored listener's port is not the one asked for.
        EndPoint stored = Passed(InheritedFrom.FileDescriptorStore, "echo").LocalEndPoint!;
        int port = ExampleDaemon.FreePort();

        Socket echo = _listeners.Listen("echo", new IPEndPoint(IPAddress.Loopback, port), 16, Log());
        _listeners.CloseUnclaimed(Log());

        Assert.That(((IPEndPoint)echo.LocalEndPoint!).Port, Is.EqualTo(port));
        Assert.That(_log.ToString(), Does.Contain($"'echo' was kept in systemd's fd store bound to {stored}, not 127.0.0.1:{port}: listening there instead"));
        Assert.That(_listeners.UnclaimedStored, Is.EqualTo(new[] { "echo" }));
    }

    [Test]
    public void AStoredUnixListener_KeepsItsSocketFile_WhenTheDaemonEnds()
    {
        string path = Path.Combine(_folder, "status.sock");
        _ = _listeners.Listen("status", new UnixDomainSocketEndPoint(path), 16, Log());
        FileDescriptorStore.Keep(_listeners, _notifier, Log(), capacityVariable: "4");
        CloseAll(ReceiveWithDescriptors().Fds);

        _listeners.RemoveSocketFiles();

        Assert.That(File.Exists(path), Is.True, "systemd passes the socket to the next start: its file must stay");
    }

    [Test]
    public void ShareWithSystemd_ClearsCloseOnExec_OfTheListenersSystemdHolds_Only()
    {
        Socket fromUnit = Passed(InheritedFrom.SocketUnit, "web");
        _ = _listeners.Listen("web", fromUnit.LocalEndPoint!, 16, Log());
        Socket stored = _listeners.Listen("echo", new IPEndPoint(IPAddress.Loopback, 0), 16, Log());
        FileDescriptorStore.Keep(_listeners, _notifier, Log(), capacityVariable: "4");
        CloseAll(ReceiveWithDescriptors().Fds);
        Socket own = _listeners.Listen("other", new IPEndPoint(IPAddress.Loopback, 0), 16, Log());

        _listeners.ShareWithSystemd();

        Assert.That(CloseOnExec(fromUnit), Is.False, "a socket unit's: closing ours must not shut systemd's down");
        Assert.That(CloseOnExec(stored), Is.False, "a stored one's: the same");
        Assert.That(CloseOnExec(own), Is.True, "one systemd does not hold stays ours alone");
    }

    /// <summary>A listening socket systemd passed (the test's own, on a free port), inherited as <paramref name="name"/>.</summary>
    private Socket Passed(InheritedFrom from, string name)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(16);
        _listeners.Inherit(name, socket, from);
        return socket;
    }

    private static bool CloseOnExec(Socket socket) => (Syscall.fcntl((int)socket.Handle, FcntlCommand.F_GETFD) & Posix.FD_CLOEXEC) != 0;

    private static void CloseAll(int[] fds) => Array.ForEach(fds, Posix.Close);

    private (string Message, int[] Fds) ReceiveWithDescriptors()
    {
        Assert.That(_systemd.Poll(30_000_000, SelectMode.SelectRead), Is.True, "a message came");
        byte[] buffer = new byte[4096];
        long n = Posix.ReceiveWithDescriptors((int)_systemd.Handle, buffer, 4, out int[] fds, out int errno);
        Assert.That(n, Is.GreaterThan(0), $"errno {errno}");
        return (Encoding.UTF8.GetString(buffer, 0, (int)n), fds);
    }

    private DaemonLog Log() => new("test", null, _log);
}
