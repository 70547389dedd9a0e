using Daemon.Interop;

namespace Daemon.Core.Tests.Unit;

/// <summary>The errno a failure carries, which a failed startup reports to systemd as ERRNO=.</summary>
[TestFixture]
public sealed class DaemonExceptionTests
{
    private const int EADDRINUSE = 98;

    [Test]
    public void ErrnoIn_AFailedSystemCall_IsItsErrno()
    {
        Assert.That(DaemonException.ErrnoIn(DaemonException.FromErrno("cannot lock pid file /run/x.pid", Errno.EACCES)), Is.EqualTo(Errno.EACCES));
    }

    [Test]
    public void ErrnoIn_ABindFailure_IsTheSocketsErrno()
    {
        // Listen's own words around the SocketException of bind(2).
        var bind = new SocketException((int)SocketError.AddressAlreadyInUse);
        Assert.That(DaemonException.ErrnoIn(new DaemonException("cannot listen on 127.0.0.1:8007: Address already in use", bind)), Is.EqualTo(EADDRINUSE));
    }

    [Test]
    public void ErrnoIn_ABindFailureKestrelWrapped_IsFoundBelowItsWrappers()
    {
        var bind = new SocketException((int)SocketError.AddressAlreadyInUse);
        var kestrel = new IOException("Failed to bind to address http://127.0.0.1:8007: address already in use.", new InvalidOperationException("Address already in use", bind));
        Assert.That(DaemonException.ErrnoIn(kestrel), Is.EqualTo(EADDRINUSE));
        Assert.That(DaemonException.ErrnoIn(new AggregateException(new InvalidOperationException("other"), kestrel)), Is.EqualTo(EADDRINUSE));
    }

    [Test]
    public void ErrnoIn_AFailureWithoutSystemCall_IsZero()
    {
        Assert.That(DaemonException.ErrnoIn(new DaemonException("--interval must be at least 1 second")), Is.Zero);
        Assert.That(DaemonException.ErrnoIn(new InvalidOperationException("simulated startup fault")), Is.Zero);
        Assert.That(DaemonException.ErrnoIn(null), Is.Zero);
    }
}
