using System;
using System.Linq;
using System.Net.Sockets;
using Daemon.Interop;

namespace Daemon;

/// <summary>
/// A failure of one daemon step, with a message that names the step and the operating system's
/// reason, such as <c>cannot lock pid file /run/x.pid: Resource temporarily unavailable</c>.
/// </summary>
/// <remarks>The message is meant to be shown to an administrator as one line.</remarks>
public sealed class DaemonException : Exception
{
    /// <summary>Creates an exception whose message is shown as it is.</summary>
    /// <param name="message">One line naming what failed and why.</param>
    public DaemonException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception that wraps the exception that caused it.</summary>
    /// <param name="message">One line naming what failed and why.</param>
    /// <param name="innerException">The exception that caused this one.</param>
    public DaemonException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The errno of the failed call, or 0 when the failure was not a system call's.</summary>
    public int Errno { get; private init; }

    /// <summary>
    /// The errno <paramref name="exception"/> carries, or 0: that of the first exception in its
    /// chain (inner exceptions, an aggregate's among them) that has one, a <see cref="DaemonException"/>'s
    /// <see cref="Errno"/> or a <see cref="SocketException"/>'s native error (a bind's EADDRINUSE, even
    /// when Kestrel wrapped it).
    /// </summary>
    internal static int ErrnoIn(Exception? exception) => exception switch
    {
        null => 0,
        DaemonException { Errno: > 0 } daemon => daemon.Errno,
        SocketException { NativeErrorCode: > 0 } socket => socket.NativeErrorCode,
        AggregateException aggregate => aggregate.InnerExceptions.Select(ErrnoIn).FirstOrDefault(errno => errno > 0),
        _ => ErrnoIn(exception.InnerException),
    };

    /// <summary>Builds "<paramref name="step"/>: strerror(errno)".</summary>
    internal static DaemonException FromErrno(string step, int errno) =>
        new($"{step}: {Posix.Describe(errno)}") { Errno = errno };
}
