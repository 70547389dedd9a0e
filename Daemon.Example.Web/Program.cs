using Daemon.Example.Web;

// start|stop|restart|status|reload|run for a web server; restart refuses no request.
return WebDaemon.Create().Main(args);
