using System;
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

    /// <summary>Builds "<paramref name="step"/>: strerror(errno)".</summary>
    internal static DaemonException FromErrno(string step, int errno) =>
        new($"{step}: {Posix.Describe(errno)}") { Errno = errno };
}
