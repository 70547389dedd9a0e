using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace Daemon.Interop;

/// <summary>Passing descriptors over Unix sockets (SCM_RIGHTS) and asking who is at the other end.</summary>
internal static unsafe partial class Posix
{
    internal const int AF_UNIX = 1;
    internal const int SOCK_STREAM = 1;
    internal const int SOCK_CLOEXEC = 0x80000;
    internal const int SOL_SOCKET = 1;
    internal const int SO_PEERCRED = 17;
    internal const int SO_ACCEPTCONN = 30;
    internal const int SCM_RIGHTS = 1;
    internal const int MSG_NOSIGNAL = 0x4000;
    internal const int MSG_CMSG_CLOEXEC = 0x40000000;

    /// <summary>
    /// Sends <paramref name="data"/> with <paramref name="fds"/> attached (SCM_RIGHTS): the peer
    /// receives descriptors of its own for the same open files.
    /// </summary>
    public static long SendWithDescriptors(int socket, byte[] data, int[] fds, out int errno)
    {
        byte[] control = new byte[fds.Length > 0 ? ControlSpace(fds.Length * sizeof(int)) : 0];
        if (fds.Length > 0)
        {
            var header = new CmsgHdr { cmsg_len = (nuint)(sizeof(CmsgHdr) + (fds.Length * sizeof(int))), cmsg_level = SOL_SOCKET, cmsg_type = SCM_RIGHTS };
            MemoryMarshal.Write(control, in header);
            MemoryMarshal.AsBytes(fds.AsSpan()).CopyTo(control.AsSpan(sizeof(CmsgHdr)));
        }

        fixed (byte* bytes = data, controlBytes = control)
        {
            var vector = new IoVec { iov_base = bytes, iov_len = (nuint)data.Length };
            var message = new MsgHdr { msg_iov = &vector, msg_iovlen = 1, msg_control = controlBytes, msg_controllen = (nuint)control.Length };
            return RetryOnEintr((socket, message: (IntPtr)(&message)), static s => (long)Libc.sendmsg(s.socket, (MsgHdr*)s.message, MSG_NOSIGNAL), out errno);
        }
    }

    /// <summary>
    /// Receives one message into <paramref name="buffer"/> and any descriptors attached to it,
    /// close-on-exec (MSG_CMSG_CLOEXEC). Returns the byte count, 0 at end of stream, -1 on error.
    /// </summary>
    public static long ReceiveWithDescriptors(int socket, byte[] buffer, int maxDescriptors, out int[] fds, out int errno)
    {
        fds = [];
        byte[] control = new byte[ControlSpace(maxDescriptors * sizeof(int))];
        long n;
        int controlLength;
        fixed (byte* bytes = buffer, controlBytes = control)
        {
            var vector = new IoVec { iov_base = bytes, iov_len = (nuint)buffer.Length };
            var message = new MsgHdr { msg_iov = &vector, msg_iovlen = 1, msg_control = controlBytes, msg_controllen = (nuint)control.Length };
            n = RetryOnEintr((socket, message: (IntPtr)(&message)), static s => (long)Libc.recvmsg(s.socket, (MsgHdr*)s.message, MSG_CMSG_CLOEXEC), out errno);
            controlLength = (int)Math.Min(message.msg_controllen, (nuint)control.Length);
        }

        if (n >= 0)
        {
            fds = ReceivedDescriptors(control.AsSpan(0, controlLength));
        }

        return n;
    }

    /// <summary>
    /// The descriptors in the SCM_RIGHTS messages of a received control buffer, walked as
    /// CMSG_FIRSTHDR and CMSG_NXTHDR do: each header aligned to 8 bytes, a malformed length ends the walk.
    /// </summary>
    private static int[] ReceivedDescriptors(ReadOnlySpan<byte> control)
    {
        var received = new List<int>();
        int at = 0;
        while (control.Length - at >= sizeof(CmsgHdr))
        {
            CmsgHdr header = MemoryMarshal.Read<CmsgHdr>(control[at..]);
            if (header.cmsg_len < (nuint)sizeof(CmsgHdr) || header.cmsg_len > (nuint)(control.Length - at))
            {
                break;
            }

            if (header.cmsg_level == SOL_SOCKET && header.cmsg_type == SCM_RIGHTS)
            {
                ReadOnlySpan<byte> payload = control.Slice(at + sizeof(CmsgHdr), (int)header.cmsg_len - sizeof(CmsgHdr));
                received.AddRange(MemoryMarshal.Cast<byte, int>(payload));
            }

            at += ControlAlign((int)header.cmsg_len);
        }

        return [.. received];
    }

    /// <summary>CMSG_SPACE: a header and <paramref name="payload"/> bytes, padded to the next header.</summary>
    internal static int ControlSpace(int payload) => sizeof(CmsgHdr) + ControlAlign(payload);

    // CMSG_ALIGN: control messages are aligned to sizeof(size_t).
    private static int ControlAlign(int length) => (length + sizeof(nuint) - 1) & ~(sizeof(nuint) - 1);

    /// <summary>
    /// A Unix stream socket bound to <paramref name="path"/>, close-on-exec, or -1. Bound here, not by
    /// System.Net.Sockets, which deletes the file of a Unix socket it bound when that Socket is
    /// disposed: a daemon that hands its listener over must leave the file to the next generation.
    /// </summary>
    public static int BindUnixSocket(string path, out int errno)
    {
        var address = new SockaddrUn { sun_family = AF_UNIX };
        var name = new Span<byte>(address.sun_path, SockaddrUn.PathBytes);
        // The path and its terminating NUL must fit in sun_path.
        if (Encoding.UTF8.GetByteCount(path) >= SockaddrUn.PathBytes)
        {
            errno = Errno.ENAMETOOLONG;
            return -1;
        }

        int length = Encoding.UTF8.GetBytes(path, name);
        int fd = WithErrno(Libc.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), out errno);
        if (fd < 0)
        {
            return fd;
        }

        uint size = (uint)(sizeof(ushort) + length + 1);
        if (WithErrno(Libc.bind(fd, &address, size), out errno) < 0)
        {
            Close(fd);
            return -1;
        }

        return fd;
    }

    /// <summary>The pid and uid of the process at the other end of a connected Unix socket (SO_PEERCRED).</summary>
    public static int PeerCredentials(int socket, out int pid, out uint uid, out int errno)
    {
        UCred credentials;
        uint length = (uint)sizeof(UCred);
        int result = WithErrno(Libc.getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length), out errno);
        pid = result == 0 ? credentials.pid : 0;
        uid = result == 0 ? credentials.uid : uint.MaxValue;
        return result;
    }

    /// <summary>True when <paramref name="fd"/> is a socket in the listening state (SO_ACCEPTCONN).</summary>
    public static bool IsListeningSocket(int fd)
    {
        int accepting = 0;
        uint length = sizeof(int);
        return Libc.getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting != 0;
    }

    /// <summary>struct msghdr on 64-bit Linux: 56 bytes.</summary>
    internal struct MsgHdr
    {
        public void* msg_name;
        public uint msg_namelen;
        public IoVec* msg_iov;
        public nuint msg_iovlen;
        public void* msg_control;
        public nuint msg_controllen;
        public int msg_flags;
    }

    /// <summary>struct iovec.</summary>
    internal struct IoVec
    {
        public void* iov_base;
        public nuint iov_len;
    }

    /// <summary>struct cmsghdr on 64-bit Linux: 16 bytes, the data (CMSG_DATA) right after it.</summary>
    internal struct CmsgHdr
    {
        public nuint cmsg_len;
        public int cmsg_level;
        public int cmsg_type;
    }

    /// <summary>struct ucred (SO_PEERCRED).</summary>
    internal struct UCred
    {
        public int pid;
        public uint uid;
        public uint gid;
    }

    /// <summary>struct sockaddr_un: the family, then a 108-byte path.</summary>
    internal struct SockaddrUn
    {
        public const int PathBytes = 108;
        public ushort sun_family;
        public fixed byte sun_path[PathBytes];
    }

    private static partial class Libc
    {
        [LibraryImport("libc", SetLastError = true)]
        internal static partial nint sendmsg(int socket, MsgHdr* message, int flags);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial nint recvmsg(int socket, MsgHdr* message, int flags);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int socket(int domain, int type, int protocol);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int bind(int socket, SockaddrUn* address, uint length);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int getsockopt(int socket, int level, int name, void* value, uint* length);
    }

    internal const int SOCK_DGRAM = 2;
    internal const int SO_TYPE = 3;

    /// <summary>
    /// The type of the socket at <paramref name="fd"/> (SO_TYPE: SOCK_STREAM, SOCK_DGRAM...), or -1
    /// with errno (ENOTSOCK for anything that is not a socket).
    /// </summary>
    public static int SocketType(int fd, out int type, out int errno)
    {
        int value = 0;
        uint length = sizeof(int);
        int result = WithErrno(Libc.getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &length), out errno);
        type = result == 0 ? value : -1;
        return result;
    }

    /// <summary>
    /// A Unix datagram socket, close-on-exec, connected to <paramref name="address"/> (a path, or an
    /// abstract name starting with NUL), or -1 with the errno of the step that failed: connect(2)
    /// tells ENOENT, ECONNREFUSED and EPROTOTYPE apart, which System.Net.Sockets folds together.
    /// </summary>
    public static int ConnectUnixDatagram(string address, out int errno)
    {
        var sockaddr = new SockaddrUn { sun_family = AF_UNIX };
        bool isAbstract = address.Length > 0 && address[0] == '\0';

        // A path needs its terminating NUL in sun_path; an abstract name is counted by length alone.
        int bytes = Encoding.UTF8.GetByteCount(address);
        if (address.Length == 0 || bytes + (isAbstract ? 0 : 1) > SockaddrUn.PathBytes)
        {
            errno = Errno.ENAMETOOLONG;
            return -1;
        }

        int length = Encoding.UTF8.GetBytes(address, new Span<byte>(sockaddr.sun_path, SockaddrUn.PathBytes));
        int fd = WithErrno(Libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), out errno);
        if (fd < 0)
        {
            return fd;
        }

        uint size = (uint)(sizeof(ushort) + length + (isAbstract ? 0 : 1));
        // A datagram connect only records the peer: it never blocks, so no EINTR to retry.
        if (WithErrno(Libc.connect(fd, &sockaddr, size), out errno) < 0)
        {
            Close(fd);
            return -1;
        }

        return fd;
    }

    private static partial class Libc
    {
        [LibraryImport("libc", SetLastError = true)]
        internal static partial int connect(int socket, SockaddrUn* address, uint length);
    }
}
