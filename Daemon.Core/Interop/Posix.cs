using System;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>
/// Every native call Daemon.Core makes, each declared once, in one file per concern (Posix.*.cs);
/// this part holds what they share. Plain system calls go straight to libc through source-generated
/// <c>LibraryImport</c>s, with structures laid out here for 64-bit Linux (x86-64 and arm64 share
/// them); only the user and group databases go through Mono.Posix (Posix.Users.cs), whose native
/// helper is loaded for them alone. Errno is read right after the call, by <see cref="WithErrno"/>.
/// Functions return the raw result and the errno; callers decide which errnos are expected.
/// </summary>
internal static partial class Posix
{
    public const int StandardInput = 0;
    public const int StandardOutput = 1;
    public const int StandardError = 2;

    /// <summary>The text of an errno, as strerror(3) gives it.</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>
    /// Returns <paramref name="result"/> and sets <paramref name="errno"/> to the call's errno when
    /// it failed (0 otherwise). Pass the native call itself as the argument: errno is read before
    /// any other managed code runs, since the next P/Invoke that sets errno overwrites it.
    /// </summary>
    private static T WithErrno<T>(T result, out int errno)
        where T : INumberBase<T>
    {
        errno = T.IsNegative(result) ? Marshal.GetLastPInvokeError() : 0;
        return result;
    }

    /// <summary>
    /// Makes <paramref name="call"/> on <paramref name="state"/> as <see cref="WithErrno"/> does, and
    /// again while it fails with EINTR. Only for calls that are safe to repeat: never close(2).
    /// </summary>
    /// <remarks>Pass a static lambda and its state as a tuple: nothing is allocated per call.</remarks>
    private static T RetryOnEintr<TState, T>(TState state, Func<TState, T> call, out int errno)
        where T : INumberBase<T>
    {
        T result;
        do
        {
            result = WithErrno(call(state), out errno);
        }
        while (errno == Errno.EINTR);

        return result;
    }
}
