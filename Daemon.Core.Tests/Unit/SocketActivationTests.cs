using Daemon.Handover;
using Daemon.Interop;
using Daemon.Logging;
using Daemon.Systemd;
using Syscall = Mono.Unix.Native.Syscall;
using FcntlCommand = Mono.Unix.Native.FcntlCommand;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// What socket activation takes from LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, against real
/// descriptors: the test places them at free consecutive numbers, where systemd would use 3 and up
/// (this process's own 3 and up belong to the runtime).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SocketActivationTests
{
    private const int Us = 4242;
    private readonly List<IDisposable> _sources = new();
    private readonly List<int> _placed = new();
    private string _folder = null!;
    private int _first;

    [SetUp]
    public void SetUp()
    {
        _folder = TestEnvironment.CreateTestFolder("activation");
        _first = FreeDescriptors(4);
    }

    [TearDown]
    public void TearDown()
    {
        _placed.ForEach(Posix.Close);
        _sources.ForEach(s => s.Dispose());
        Directory.Delete(_folder, recursive: true);
    }

    [TestCase(null)]
    [TestCase("1")]
    [TestCase("not a pid")]
    public void Check_TakesNothing_WhenListenPidIsNotThisProcess(string? listenPid)
    {
        // Not ours, as sd_listen_fds decides: even a pipe at the first descriptor is no reason to refuse.
        PlacePipe(0);
        Assert.That(SocketActivation.Check(listenPid, "1", "echo", Us, _first), Is.Empty);
    }

    [Test]
    public void Check_TakesNothing_WithoutListenFds_OrWithZero()
    {
        Assert.That(SocketActivation.Check("4242", null, null, Us, _first), Is.Empty);
        Assert.That(SocketActivation.Check("4242", "0", null, Us, _first), Is.Empty);
    }

    [Test]
    public void Check_GivesEachListeningStreamSocket_ByItsName()
    {
        PlaceListener(0);
        PlaceUnixListener(1);
        IReadOnlyList<(string Name, int Fd)> passed = SocketActivation.Check("4242", "2", "web:control", Us, _first);
        Assert.That(passed, Is.EqualTo(new[] { ("web", _first), ("control", _first + 1) }));
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase(":")]
    public void Check_NamesEveryDescriptorUnknown_WhenNamesAreUnsetOrEmpty(string? names)
    {
        PlaceListener(0);
        PlaceListener(1);
        IReadOnlyList<(string Name, int Fd)> passed = SocketActivation.Check("4242", "2", names, Us, _first);
        Assert.That(passed, Is.EqualTo(new[] { ("unknown", _first), ("unknown", _first + 1) }));
    }

    [TestCase("x")]
    [TestCase("-1")]
    [TestCase("2147483647")]
    public void Check_Refuses_AListenFdsThatIsNoCount(string listenFds)
    {
        Assert.That(() => SocketActivation.Check("4242", listenFds, null, Us, _first),
            Throws.InstanceOf<DaemonException>().With.Message.EqualTo($"socket activation: LISTEN_FDS='{listenFds}' is not a count of descriptors"));
    }

    [TestCase("echo", 2)]
    [TestCase("a:b:c", 2)]
    [TestCase("a:b", 1)]
    public void Check_Refuses_NamesThatDoNotMatchTheCount_BeforeLookingAtAnyDescriptor(string names, int count)
    {
        PlaceListener(0);
        PlaceListener(1);
        Assert.That(() => SocketActivation.Check("4242", count.ToString(System.Globalization.CultureInfo.InvariantCulture), names, Us, _first),
            Throws.InstanceOf<DaemonException>().With.Message.EqualTo($"socket activation: LISTEN_FDNAMES names {names.Split(':').Length} descriptor(s), but LISTEN_FDS passes {count}"));
        AssertUntouched(0);
        AssertUntouched(1);
    }

    [TestCase("pipe", "is a pipe, not a socket")]
    [TestCase("file", "is a regular file, not a socket")]
    [TestCase("device", "is a character device, not a socket")]
    [TestCase("unbound", "is a stream socket that is not listening")]
    [TestCase("datagram", "is a datagram socket, not a stream socket")]
    [TestCase("closed", "cannot be examined: Bad file descriptor")]
    public void Check_Refuses_WhatIsNotAListeningStreamSocket_AndTouchesNoDescriptor(string what, string reason)
    {
        // The first is a good listener: it must be left as it was, not taken, when the second is wrong.
        PlaceListener(0);
        switch (what)
        {
            case "pipe": PlacePipe(1); break;
            case "file": PlaceFile(1, Path.Combine(_folder, "file")); break;
            case "device": PlaceFile(1, "/dev/null"); break;
            case "unbound": Place(1, Keep(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))); break;
            case "datagram": Place(1, Keep(Bound(new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)))); break;
        }

        Assert.That(() => SocketActivation.Check("4242", "2", "echo:second", Us, _first),
            Throws.InstanceOf<DaemonException>().With.Message.EqualTo($"socket activation: LISTEN_FDS=2, but descriptor {_first + 1} ('second') {reason}; nothing was taken"));
        AssertUntouched(0);
        if (what != "closed")
        {
            AssertUntouched(1);
        }
    }

    [Test]
    public void Check_Refuses_MoreDescriptorsThanWerePassed()
    {
        // LISTEN_FDS=3 with one socket: what follows it is not ours (in a daemon, the runtime's own files).
        PlaceListener(0);
        PlaceFile(1, "/dev/urandom");
        PlacePipe(2);
        Assert.That(() => SocketActivation.Check("4242", "3", null, Us, _first),
            Throws.InstanceOf<DaemonException>().With.Message.Contains($"descriptor {_first + 1} ('unknown') is a character device, not a socket"));
        for (int i = 0; i < 3; i++)
        {
            AssertUntouched(i);
        }
    }

    [TestCase("echo", "systemd passed listener 'echo' on 127.0.0.1:")]
    [TestCase("stored.echo", "systemd passed listener 'echo' back from its fd store, on 127.0.0.1:")]
    public void Adopt_KeepsEachSocketByName_CloseOnExec_AndSaysWhereItListens(string fdName, string said)
    {
        // "stored.": one this daemon put in systemd's fd store, back under its listener's name.
        int port = PlaceListener(0);
        var log = new StringWriter();
        var into = new ListenerSet();
        SocketActivation.Adopt(SocketActivation.Check("4242", "1", fdName, Us, _first), into, new DaemonLog("test", null, log));
        _placed.Remove(_first);

        Assert.That(into.InheritedCount, Is.EqualTo(1));
        Assert.That(Syscall.fcntl(_first, FcntlCommand.F_GETFD) & Posix.FD_CLOEXEC, Is.EqualTo(Posix.FD_CLOEXEC), "close-on-exec");
        Assert.That(log.ToString(), Does.Contain(said + port));
        Socket claimed = into.Listen("echo", new IPEndPoint(IPAddress.Loopback, port), 16, new DaemonLog("test", null, log));
        Assert.That((int)claimed.Handle, Is.EqualTo(_first), "the passed socket itself is the listener");
        into.CloseAll();
    }

    /// <summary>The first of <paramref name="count"/> consecutive descriptors nothing uses, well above the runtime's.</summary>
    private static int FreeDescriptors(int count)
    {
        for (int first = 500; first < 1000; first += count)
        {
            bool free = true;
            for (int fd = first; fd < first + count && free; fd++)
            {
                free = Posix.Fstat(fd, out _, out _) < 0;
            }

            if (free)
            {
                return first;
            }
        }

        throw new AssertionException("no free descriptors between 500 and 1000");
    }

    private T Keep<T>(T source)
        where T : IDisposable
    {
        _sources.Add(source);
        return source;
    }

    private static Socket Bound(Socket socket)
    {
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    private int PlaceListener(int index)
    {
        Socket listener = Keep(Bound(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)));
        listener.Listen(16);
        Place(index, listener);
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    private void PlaceUnixListener(int index)
    {
        Socket listener = Keep(new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified));
        listener.Bind(new UnixDomainSocketEndPoint(Path.Combine(_folder, "control.sock")));
        listener.Listen(16);
        Place(index, listener);
    }

    private void PlacePipe(int index)
    {
        Assert.That(Posix.Pipe(out int read, out int write, out int errno), Is.EqualTo(0), $"pipe: errno {errno}");
        Place(index, read);
        Posix.Close(read);
        Posix.Close(write);
    }

    private void PlaceFile(int index, string path)
    {
        int fd = Posix.Open(path, OpenFlags.O_RDWR | OpenFlags.O_CREAT | OpenFlags.O_CLOEXEC, 0x180, out int errno);
        Assert.That(fd, Is.GreaterThanOrEqualTo(0), $"open {path}: errno {errno}");
        Place(index, fd);
        Posix.Close(fd);
    }

    private void Place(int index, Socket socket) => Place(index, (int)socket.Handle);

    /// <summary>A copy of <paramref name="fd"/> at the test's descriptor <paramref name="index"/>, inheritable as systemd passes it.</summary>
    private void Place(int index, int fd)
    {
        Assert.That(Posix.Dup2(fd, _first + index, out int errno), Is.EqualTo(_first + index), $"dup2: errno {errno}");
        _placed.Add(_first + index);
    }

    /// <summary>Still open, still inheritable: the refusal changed nothing about it.</summary>
    private void AssertUntouched(int index)
    {
        int fd = _first + index;
        Assert.That(Posix.Fstat(fd, out _, out int errno), Is.EqualTo(0), $"descriptor {fd} is still open (errno {errno})");
        Assert.That(Syscall.fcntl(fd, FcntlCommand.F_GETFD) & Posix.FD_CLOEXEC, Is.EqualTo(0), $"descriptor {fd} is still inheritable");
    }
}
