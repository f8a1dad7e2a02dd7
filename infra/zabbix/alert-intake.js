// Alert intake webhook for Zabbix 5.0-7.x. Zabbix runs this in Duktape
// (ECMAScript 5.1): no let/const, arrow functions, template literals or
// String.prototype.includes. The argument value is the JSON object of the media type's
// parameters. Zabbix 5.4+ offers HttpRequest; 5.0 only CurlHttpRequest.
var AlertIntake = {
    // A macro Zabbix could not resolve is left as written, e.g. {EVENT.RECOVERY.DATE}.
    unresolved: /^\{[$#A-Za-z0-9_.:]+\}$/,

    clean: function (text) {
        if (typeof text !== 'string') {
            return text;
        }
        return AlertIntake.unresolved.test(text) ? undefined : text;
    },

    // {EVENT.DATE} is YYYY.MM.DD and {EVENT.TIME} hh:mm:ss, in the Zabbix
    // server's time zone: unix seconds, or undefined when unreadable.
    timestamp: function (date, time) {
        var d = /^(\d{4})\.(\d{2})\.(\d{2})$/.exec(AlertIntake.clean(date) || '');
        var t = /^(\d{2}):(\d{2}):(\d{2})$/.exec(AlertIntake.clean(time) || '');
        if (!d || !t) {
            return undefined;
        }
        var at = new Date(+d[1], +d[2] - 1, +d[3], +t[1], +t[2], +t[3]);
        return String(Math.floor(at.getTime() / 1000));
    },

    tags: function (json) {
        var text = AlertIntake.clean(json);
        if (!text) {
            return undefined;
        }
        try {
            return JSON.parse(text);
        } catch (error) {
            return text;
        }
    },

    payload: function (p) {
        var recovery = p.event_value === '0';
        var body = {
            event_id: p.event_id,
            event_value: p.event_value,
            event_update_status: p.event_update_status,
            event_nseverity: p.event_nseverity,
            event_severity: p.event_severity,
            event_name: p.event_name,
            event_timestamp: recovery
                ? AlertIntake.timestamp(p.event_recovery_date, p.event_recovery_time)
                : AlertIntake.timestamp(p.event_date, p.event_time),
            event_tags: AlertIntake.tags(p.event_tags),
            host_name: p.host_name,
            host_ip: p.host_ip,
            trigger_id: p.trigger_id,
            item_value: p.item_value,
            zabbix_url: p.zabbix_url,
            subject: p.alert_subject,
            message: p.alert_message
        };
        var out = {};
        for (var name in body) {
            if (body.hasOwnProperty(name)) {
                var v = AlertIntake.clean(body[name]);
                if (v !== undefined && v !== '') {
                    out[name] = v;
                }
            }
        }
        return out;
    },

    // POST the JSON; [status, response text].
    post: function (url, json) {
        var request, response, status;
        if (typeof HttpRequest !== 'undefined') {
            request = new HttpRequest();
            request.addHeader('Content-Type: application/json');
            response = request.post(url, json);
            status = request.getStatus();
        } else {
            request = new CurlHttpRequest();
            request.AddHeader('Content-Type: application/json');
            response = request.Post(url, json);
            status = request.Status();
        }
        return [status, response];
    },

    log: function (message) {
        if (typeof Zabbix.log === 'function') {
            Zabbix.log(4, '[alert-intake] ' + message);
        } else {
            Zabbix.Log(4, '[alert-intake] ' + message);
        }
    }
};

try {
    var params = JSON.parse(value);
    if (!params.URL || AlertIntake.unresolved.test(params.URL)) {
        throw 'the URL parameter (the push URL with its integration_key) is not set';
    }
    var answer = AlertIntake.post(params.URL, JSON.stringify(AlertIntake.payload(params)));
    AlertIntake.log('answered ' + answer[0]);
    if (answer[0] < 200 || answer[0] >= 300) {
        throw 'the push was refused with HTTP ' + answer[0] + ': ' + answer[1];
    }
    return 'OK';
} catch (error) {
    AlertIntake.log('failed: ' + error);
    throw 'alert-intake: ' + error;
}
