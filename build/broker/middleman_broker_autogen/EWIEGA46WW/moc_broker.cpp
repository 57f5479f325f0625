/****************************************************************************
** Meta object code from reading C++ file 'broker.h'
**
** Created by: The Qt Meta Object Compiler version 68 (Qt 6.4.2)
**
** WARNING! All changes made in this file will be lost!
*****************************************************************************/

#include <memory>
#include "../../../../broker/broker.h"
#include <QtCore/qmetatype.h>
#if !defined(Q_MOC_OUTPUT_REVISION)
#error "The header file 'broker.h' doesn't include <QObject>."
#elif Q_MOC_OUTPUT_REVISION != 68
#error "This file was generated using the moc from 6.4.2. It"
#error "cannot be used with the include files from this version of Qt."
#error "(The moc has changed too much.)"
#endif

#ifndef Q_CONSTINIT
#define Q_CONSTINIT
#endif

QT_BEGIN_MOC_NAMESPACE
QT_WARNING_PUSH
QT_WARNING_DISABLE_DEPRECATED
namespace {
struct qt_meta_stringdata_Middleman__Broker_t {
    uint offsetsAndSizes[58];
    char stringdata0[18];
    char stringdata1[14];
    char stringdata2[1];
    char stringdata3[20];
    char stringdata4[5];
    char stringdata5[17];
    char stringdata6[3];
    char stringdata7[10];
    char stringdata8[7];
    char stringdata9[18];
    char stringdata10[8];
    char stringdata11[20];
    char stringdata12[11];
    char stringdata13[19];
    char stringdata14[5];
    char stringdata15[8];
    char stringdata16[13];
    char stringdata17[15];
    char stringdata18[23];
    char stringdata19[8];
    char stringdata20[16];
    char stringdata21[6];
    char stringdata22[7];
    char stringdata23[14];
    char stringdata24[5];
    char stringdata25[8];
    char stringdata26[7];
    char stringdata27[11];
    char stringdata28[8];
};
#define QT_MOC_LITERAL(ofs, len) \
    uint(sizeof(qt_meta_stringdata_Middleman__Broker_t::offsetsAndSizes) + ofs), len 
Q_CONSTINIT static const qt_meta_stringdata_Middleman__Broker_t qt_meta_stringdata_Middleman__Broker = {
    {
        QT_MOC_LITERAL(0, 17),  // "Middleman::Broker"
        QT_MOC_LITERAL(18, 13),  // "peerConnected"
        QT_MOC_LITERAL(32, 0),  // ""
        QT_MOC_LITERAL(33, 19),  // "Middleman::PeerInfo"
        QT_MOC_LITERAL(53, 4),  // "peer"
        QT_MOC_LITERAL(58, 16),  // "peerDisconnected"
        QT_MOC_LITERAL(75, 2),  // "id"
        QT_MOC_LITERAL(78, 9),  // "closeCode"
        QT_MOC_LITERAL(88, 6),  // "reason"
        QT_MOC_LITERAL(95, 17),  // "subscriptionAdded"
        QT_MOC_LITERAL(113, 7),  // "pattern"
        QT_MOC_LITERAL(121, 19),  // "subscriptionRemoved"
        QT_MOC_LITERAL(141, 10),  // "grantAdded"
        QT_MOC_LITERAL(152, 18),  // "Middleman::Command"
        QT_MOC_LITERAL(171, 4),  // "kind"
        QT_MOC_LITERAL(176, 7),  // "granter"
        QT_MOC_LITERAL(184, 12),  // "grantRemoved"
        QT_MOC_LITERAL(197, 14),  // "requestStarted"
        QT_MOC_LITERAL(212, 22),  // "Middleman::RequestInfo"
        QT_MOC_LITERAL(235, 7),  // "request"
        QT_MOC_LITERAL(243, 15),  // "requestFinished"
        QT_MOC_LITERAL(259, 5),  // "token"
        QT_MOC_LITERAL(265, 6),  // "status"
        QT_MOC_LITERAL(272, 13),  // "messageRouted"
        QT_MOC_LITERAL(286, 4),  // "from"
        QT_MOC_LITERAL(291, 7),  // "command"
        QT_MOC_LITERAL(299, 6),  // "target"
        QT_MOC_LITERAL(306, 10),  // "deliveries"
        QT_MOC_LITERAL(317, 7)   // "stopped"
    },
    "Middleman::Broker",
    "peerConnected",
    "",
    "Middleman::PeerInfo",
    "peer",
    "peerDisconnected",
    "id",
    "closeCode",
    "reason",
    "subscriptionAdded",
    "pattern",
    "subscriptionRemoved",
    "grantAdded",
    "Middleman::Command",
    "kind",
    "granter",
    "grantRemoved",
    "requestStarted",
    "Middleman::RequestInfo",
    "request",
    "requestFinished",
    "token",
    "status",
    "messageRouted",
    "from",
    "command",
    "target",
    "deliveries",
    "stopped"
};
#undef QT_MOC_LITERAL
} // unnamed namespace

Q_CONSTINIT static const uint qt_meta_data_Middleman__Broker[] = {

 // content:
      10,       // revision
       0,       // classname
       0,    0, // classinfo
      10,   14, // methods
       0,    0, // properties
       0,    0, // enums/sets
       0,    0, // constructors
       0,       // flags
      10,       // signalCount

 // signals: name, argc, parameters, tag, flags, initial metatype offsets
       1,    1,   74,    2, 0x06,    1 /* Public */,
       5,    3,   77,    2, 0x06,    3 /* Public */,
       9,    2,   84,    2, 0x06,    7 /* Public */,
      11,    2,   89,    2, 0x06,   10 /* Public */,
      12,    3,   94,    2, 0x06,   13 /* Public */,
      16,    2,  101,    2, 0x06,   17 /* Public */,
      17,    1,  106,    2, 0x06,   20 /* Public */,
      20,    2,  109,    2, 0x06,   22 /* Public */,
      23,    4,  114,    2, 0x06,   25 /* Public */,
      28,    0,  123,    2, 0x06,   30 /* Public */,

 // signals: parameters
    QMetaType::Void, 0x80000000 | 3,    4,
    QMetaType::Void, QMetaType::ULongLong, QMetaType::Int, QMetaType::QString,    6,    7,    8,
    QMetaType::Void, QMetaType::ULongLong, QMetaType::QByteArray,    6,   10,
    QMetaType::Void, QMetaType::ULongLong, QMetaType::QByteArray,    6,   10,
    QMetaType::Void, 0x80000000 | 13, QMetaType::QByteArray, QMetaType::ULongLong,   14,   10,   15,
    QMetaType::Void, 0x80000000 | 13, QMetaType::QByteArray,   14,   10,
    QMetaType::Void, 0x80000000 | 18,   19,
    QMetaType::Void, QMetaType::QByteArray, QMetaType::Int,   21,   22,
    QMetaType::Void, QMetaType::ULongLong, 0x80000000 | 13, QMetaType::QByteArray, QMetaType::Int,   24,   25,   26,   27,
    QMetaType::Void,

       0        // eod
};

Q_CONSTINIT const QMetaObject Middleman::Broker::staticMetaObject = { {
    QMetaObject::SuperData::link<QObject::staticMetaObject>(),
    qt_meta_stringdata_Middleman__Broker.offsetsAndSizes,
    qt_meta_data_Middleman__Broker,
    qt_static_metacall,
    nullptr,
    qt_incomplete_metaTypeArray<qt_meta_stringdata_Middleman__Broker_t,
        // Q_OBJECT / Q_GADGET
        QtPrivate::TypeAndForceComplete<Broker, std::true_type>,
        // method 'peerConnected'
        QtPrivate::TypeAndForceComplete<void, std::false_type>,
        QtPrivate::TypeAndForceComplete<const Middleman::PeerInfo &, std::false_type>,
        // method 'peerDisconnected'
        QtPrivate::TypeAndForceComplete<void, std::false_type>,
        QtPrivate::TypeAndForceComplete<quint64, std::false_type>,
        QtPrivate::TypeAndForceComplete<int, std::false_type>,
        QtPrivate::TypeAndForceComplete<const QString &, std::false_type>,
        // method 'subscriptionAdded'
        QtPrivate::TypeAndForceComplete<void, std::false_type>,
        QtPrivate::TypeAndForceComplete<quint64, std::false_type>,
        QtPrivate::TypeAndForceComplete<const QByteArray &, std::false_type>,
        // method 'subscriptionRemoved'
        QtPrivate::TypeAndForceComplete<void, std::false_type>,
        QtPrivate::TypeAndForceComplete<quint64, std::false_type>,
        QtPrivate::TypeAndForceComplete<const QByteArray &, std::false_type>,
        // method 'grantAdded'
        QtPrivate::TypeAndForceComplete<void, std::false_type>,
        QtPrivate::TypeAndForceComplete<Middleman::Command, std::false_type>,
        QtPrivate::TypeAndForceComplete<const QByteArray &, std::false_type>,
        QtPrivate::TypeAndForceComplete<quint64, std::false_type>,
        // method 'grantRemoved'
        QtPrivate::TypeAndForceComplete<void, std::false_type>,
        QtPrivate::TypeAndForceComplete<Middleman::Command, std::false_type>,
        QtPrivate::TypeAndForceComplete<const QByteArray &, std::false_type>,
        // method 'requestStarted'
        QtPrivate::TypeAndForceComplete<void, std::false_type>,
        QtPrivate::TypeAndForceComplete<const Middleman::RequestInfo &, std::false_type>,
        // method 'requestFinished'
        QtPrivate::TypeAndForceComplete<void, std::false_type>,
        QtPrivate::TypeAndForceComplete<const QByteArray &, std::false_type>,
        QtPrivate::TypeAndForceComplete<int, std::false_type>,
        // method 'messageRouted'
        QtPrivate::TypeAndForceComplete<void, std::false_type>,
        QtPrivate::TypeAndForceComplete<quint64, std::false_type>,
        QtPrivate::TypeAndForceComplete<Middleman::Command, std::false_type>,
        QtPrivate::TypeAndForceComplete<const QByteArray &, std::false_type>,
        QtPrivate::TypeAndForceComplete<int, std::false_type>,
        // method 'stopped'
        QtPrivate::TypeAndForceComplete<void, std::false_type>
    >,
    nullptr
} };

void Middleman::Broker::qt_static_metacall(QObject *_o, QMetaObject::Call _c, int _id, void **_a)
{
    if (_c == QMetaObject::InvokeMetaMethod) {
        auto *_t = static_cast<Broker *>(_o);
        (void)_t;
        switch (_id) {
        case 0: _t->peerConnected((*reinterpret_cast< std::add_pointer_t<Middleman::PeerInfo>>(_a[1]))); break;
        case 1: _t->peerDisconnected((*reinterpret_cast< std::add_pointer_t<quint64>>(_a[1])),(*reinterpret_cast< std::add_pointer_t<int>>(_a[2])),(*reinterpret_cast< std::add_pointer_t<QString>>(_a[3]))); break;
        case 2: _t->subscriptionAdded((*reinterpret_cast< std::add_pointer_t<quint64>>(_a[1])),(*reinterpret_cast< std::add_pointer_t<QByteArray>>(_a[2]))); break;
        case 3: _t->subscriptionRemoved((*reinterpret_cast< std::add_pointer_t<quint64>>(_a[1])),(*reinterpret_cast< std::add_pointer_t<QByteArray>>(_a[2]))); break;
        case 4: _t->grantAdded((*reinterpret_cast< std::add_pointer_t<Middleman::Command>>(_a[1])),(*reinterpret_cast< std::add_pointer_t<QByteArray>>(_a[2])),(*reinterpret_cast< std::add_pointer_t<quint64>>(_a[3]))); break;
        case 5: _t->grantRemoved((*reinterpret_cast< std::add_pointer_t<Middleman::Command>>(_a[1])),(*reinterpret_cast< std::add_pointer_t<QByteArray>>(_a[2]))); break;
        case 6: _t->requestStarted((*reinterpret_cast< std::add_pointer_t<Middleman::RequestInfo>>(_a[1]))); break;
        case 7: _t->requestFinished((*reinterpret_cast< std::add_pointer_t<QByteArray>>(_a[1])),(*reinterpret_cast< std::add_pointer_t<int>>(_a[2]))); break;
        case 8: _t->messageRouted((*reinterpret_cast< std::add_pointer_t<quint64>>(_a[1])),(*reinterpret_cast< std::add_pointer_t<Middleman::Command>>(_a[2])),(*reinterpret_cast< std::add_pointer_t<QByteArray>>(_a[3])),(*reinterpret_cast< std::add_pointer_t<int>>(_a[4]))); break;
        case 9: _t->stopped(); break;
        default: ;
        }
    } else if (_c == QMetaObject::RegisterMethodArgumentMetaType) {
        switch (_id) {
        default: *reinterpret_cast<QMetaType *>(_a[0]) = QMetaType(); break;
        case 0:
            switch (*reinterpret_cast<int*>(_a[1])) {
            default: *reinterpret_cast<QMetaType *>(_a[0]) = QMetaType(); break;
            case 0:
                *reinterpret_cast<QMetaType *>(_a[0]) = QMetaType::fromType< Middleman::PeerInfo >(); break;
            }
            break;
        case 6:
            switch (*reinterpret_cast<int*>(_a[1])) {
            default: *reinterpret_cast<QMetaType *>(_a[0]) = QMetaType(); break;
            case 0:
                *reinterpret_cast<QMetaType *>(_a[0]) = QMetaType::fromType< Middleman::RequestInfo >(); break;
            }
            break;
        }
    } else if (_c == QMetaObject::IndexOfMethod) {
        int *result = reinterpret_cast<int *>(_a[0]);
        {
            using _t = void (Broker::*)(const Middleman::PeerInfo & );
            if (_t _q_method = &Broker::peerConnected; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 0;
                return;
            }
        }
        {
            using _t = void (Broker::*)(quint64 , int , const QString & );
            if (_t _q_method = &Broker::peerDisconnected; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 1;
                return;
            }
        }
        {
            using _t = void (Broker::*)(quint64 , const QByteArray & );
            if (_t _q_method = &Broker::subscriptionAdded; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 2;
                return;
            }
        }
        {
            using _t = void (Broker::*)(quint64 , const QByteArray & );
            if (_t _q_method = &Broker::subscriptionRemoved; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 3;
                return;
            }
        }
        {
            using _t = void (Broker::*)(Middleman::Command , const QByteArray & , quint64 );
            if (_t _q_method = &Broker::grantAdded; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 4;
                return;
            }
        }
        {
            using _t = void (Broker::*)(Middleman::Command , const QByteArray & );
            if (_t _q_method = &Broker::grantRemoved; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 5;
                return;
            }
        }
        {
            using _t = void (Broker::*)(const Middleman::RequestInfo & );
            if (_t _q_method = &Broker::requestStarted; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 6;
                return;
            }
        }
        {
            using _t = void (Broker::*)(const QByteArray & , int );
            if (_t _q_method = &Broker::requestFinished; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 7;
                return;
            }
        }
        {
            using _t = void (Broker::*)(quint64 , Middleman::Command , const QByteArray & , int );
            if (_t _q_method = &Broker::messageRouted; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 8;
                return;
            }
        }
        {
            using _t = void (Broker::*)();
            if (_t _q_method = &Broker::stopped; *reinterpret_cast<_t *>(_a[1]) == _q_method) {
                *result = 9;
                return;
            }
        }
    }
}

const QMetaObject *Middleman::Broker::metaObject() const
{
    return QObject::d_ptr->metaObject ? QObject::d_ptr->dynamicMetaObject() : &staticMetaObject;
}

void *Middleman::Broker::qt_metacast(const char *_clname)
{
    if (!_clname) return nullptr;
    if (!strcmp(_clname, qt_meta_stringdata_Middleman__Broker.stringdata0))
        return static_cast<void*>(this);
    return QObject::qt_metacast(_clname);
}

int Middleman::Broker::qt_metacall(QMetaObject::Call _c, int _id, void **_a)
{
    _id = QObject::qt_metacall(_c, _id, _a);
    if (_id < 0)
        return _id;
    if (_c == QMetaObject::InvokeMetaMethod) {
        if (_id < 10)
            qt_static_metacall(this, _c, _id, _a);
        _id -= 10;
    } else if (_c == QMetaObject::RegisterMethodArgumentMetaType) {
        if (_id < 10)
            qt_static_metacall(this, _c, _id, _a);
        _id -= 10;
    }
    return _id;
}

// SIGNAL 0
void Middleman::Broker::peerConnected(const Middleman::PeerInfo & _t1)
{
    void *_a[] = { nullptr, const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t1))) };
    QMetaObject::activate(this, &staticMetaObject, 0, _a);
}

// SIGNAL 1
void Middleman::Broker::peerDisconnected(quint64 _t1, int _t2, const QString & _t3)
{
    void *_a[] = { nullptr, const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t1))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t2))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t3))) };
    QMetaObject::activate(this, &staticMetaObject, 1, _a);
}

// SIGNAL 2
void Middleman::Broker::subscriptionAdded(quint64 _t1, const QByteArray & _t2)
{
    void *_a[] = { nullptr, const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t1))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t2))) };
    QMetaObject::activate(this, &staticMetaObject, 2, _a);
}

// SIGNAL 3
void Middleman::Broker::subscriptionRemoved(quint64 _t1, const QByteArray & _t2)
{
    void *_a[] = { nullptr, const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t1))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t2))) };
    QMetaObject::activate(this, &staticMetaObject, 3, _a);
}

// SIGNAL 4
void Middleman::Broker::grantAdded(Middleman::Command _t1, const QByteArray & _t2, quint64 _t3)
{
    void *_a[] = { nullptr, const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t1))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t2))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t3))) };
    QMetaObject::activate(this, &staticMetaObject, 4, _a);
}

// SIGNAL 5
void Middleman::Broker::grantRemoved(Middleman::Command _t1, const QByteArray & _t2)
{
    void *_a[] = { nullptr, const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t1))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t2))) };
    QMetaObject::activate(this, &staticMetaObject, 5, _a);
}

// SIGNAL 6
void Middleman::Broker::requestStarted(const Middleman::RequestInfo & _t1)
{
    void *_a[] = { nullptr, const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t1))) };
    QMetaObject::activate(this, &staticMetaObject, 6, _a);
}

// SIGNAL 7
void Middleman::Broker::requestFinished(const QByteArray & _t1, int _t2)
{
    void *_a[] = { nullptr, const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t1))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t2))) };
    QMetaObject::activate(this, &staticMetaObject, 7, _a);
}

// SIGNAL 8
void Middleman::Broker::messageRouted(quint64 _t1, Middleman::Command _t2, const QByteArray & _t3, int _t4)
{
    void *_a[] = { nullptr, const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t1))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t2))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t3))), const_cast<void*>(reinterpret_cast<const void*>(std::addressof(_t4))) };
    QMetaObject::activate(this, &staticMetaObject, 8, _a);
}

// SIGNAL 9
void Middleman::Broker::stopped()
{
    QMetaObject::activate(this, &staticMetaObject, 9, nullptr);
}
QT_WARNING_POP
QT_END_MOC_NAMESPACE
